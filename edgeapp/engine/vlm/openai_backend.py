"""VLM backend for any OpenAI-compatible chat-completions server (OVMS, vLLM, Ollama, llama.cpp).

One HTTP POST per request; the requests of a batch go out concurrently from a small thread
pool, so they overlap and the server's continuous batching sees them together. One
``requests.Session`` (its urllib3 pool is thread-safe, sized to the thread pool) keeps the
connections alive between calls.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from edgeapp.engine.orders.catalog import Catalog
from edgeapp.engine.vlm.prompt import build_messages, build_user_text, parse_answer
from edgeapp.engine.vlm.request import TIMEOUT, VlmAnswer, VlmRequest
from edgeapp.errors import ConfigError, InputError, MissingExtraError

if TYPE_CHECKING:
    import requests

OVMS_API_PATH = "/v3/chat/completions"
OPENAI_API_PATH = "/v1/chat/completions"  # vLLM, Ollama, llama.cpp server
_SNIPPET = 200  # characters of an error body kept in the error text


def encode_frame(frame: np.ndarray, max_side: int, quality: int) -> str:
    """A ``data:image/jpeg;base64,...`` URL of ``frame``, long side at most ``max_side``."""
    h, w = frame.shape[:2]
    scale = max_side / max(h, w)
    if scale < 1.0:
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        frame = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise InputError(f"frame {frame.shape} cannot be JPEG-encoded")
    return "data:image/jpeg;base64," + base64.b64encode(buf.tobytes()).decode("ascii")


class OpenAiBackend:
    """Asks an OpenAI-compatible ``chat/completions`` endpoint which items are in the frames."""

    name = "openai"

    def __init__(
        self,
        url: str,
        *,
        api_path: str = OVMS_API_PATH,
        model_name: str,
        catalog: Catalog,
        timeout_s: float = 30.0,
        connect_timeout_s: float = 3.0,
        retries: int = 2,
        backoff_s: float = 0.2,
        max_image_side: int = 768,
        jpeg_quality: int = 85,
        max_tokens: int = 200,
        max_parallel: int = 16,
        api_key: str | None = None,
    ) -> None:
        try:
            import requests
            from requests.adapters import HTTPAdapter
        except ImportError:
            raise MissingExtraError(
                "the openai VLM backend needs 'requests': pip install 'edgeapp[app]'"
            ) from None
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"vlm.url must start with http:// or https://, got {url!r}")
        for key, value in (("timeout_s", timeout_s), ("max_image_side", max_image_side),
                           ("max_parallel", max_parallel), ("max_tokens", max_tokens)):
            if value <= 0:
                raise ConfigError(f"vlm.{key} must be > 0, got {value!r}")
        if retries < 0 or backoff_s < 0:
            raise ConfigError(f"vlm.retries and vlm.backoff_s must be >= 0, got "
                              f"{retries!r}, {backoff_s!r}")
        if not 1 <= jpeg_quality <= 100:
            raise ConfigError(f"vlm.jpeg_quality must be 1..100, got {jpeg_quality!r}")
        self._requests = requests
        self.endpoint = url.rstrip("/") + "/" + api_path.lstrip("/")
        self.model_name = model_name
        self.catalog = catalog
        self.timeout_s = float(timeout_s)
        self.connect_timeout_s = float(connect_timeout_s)
        self.retries = int(retries)
        self.backoff_s = float(backoff_s)
        self.max_image_side = int(max_image_side)
        self.jpeg_quality = int(jpeg_quality)
        self.max_tokens = int(max_tokens)
        self.max_parallel = int(max_parallel)
        self.user_text = build_user_text(catalog)

        self._session = requests.Session()
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=self.max_parallel, max_retries=0)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        self._session.headers["Content-Type"] = "application/json"
        if api_key:
            self._session.headers["Authorization"] = f"Bearer {api_key}"
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        self._closed = False

    # ── Backend protocol ─────────────────────────────────────────────────────────────────

    def infer_batch(self, requests: Sequence[VlmRequest]) -> list[VlmAnswer]:
        """Post every request of the batch at once (up to ``max_parallel``); one answer each."""
        if len(requests) == 1:
            return [self.infer_one(requests[0])]
        pool = self._get_pool()
        futures = [pool.submit(self.infer_one, request) for request in requests]
        return [future.result() for future in futures]  # infer_one is bounded by timeouts

    def close(self) -> None:
        """Stop the thread pool and close the kept-alive connections."""
        with self._pool_lock:
            self._closed = True
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
        self._session.close()

    # ── one request ──────────────────────────────────────────────────────────────────────

    def build_body(self, request: VlmRequest) -> dict[str, Any]:
        """The chat-completions body for ``request``: rules, inventory and its frames."""
        urls = [encode_frame(f, self.max_image_side, self.jpeg_quality) for f in request.frames]
        return {
            "model": self.model_name,
            "messages": build_messages(self.user_text, urls),
            "temperature": 0,
            "max_tokens": self.max_tokens,
            "stream": False,
        }

    def infer_one(self, request: VlmRequest) -> VlmAnswer:
        """POST one request with retries; never raises, a failure is an answer with error."""
        t0 = time.monotonic()
        rid = request.request_id
        try:
            payload = json.dumps(self.build_body(request)).encode("utf-8")
            text, error = self._post(payload, request.deadline)
        except Exception as exc:  # a bug or a bad frame must fail this request, not the batch
            return VlmAnswer.failed(rid, f"backend error: {type(exc).__name__}: {exc}")
        if error is not None:
            answer = VlmAnswer.failed(rid, error, raw_text=text)
        else:
            parsed = parse_answer(text, self.catalog)
            answer = VlmAnswer(rid, parsed.items, raw_text=text, error=parsed.error,
                               unknown=parsed.unknown)
        return VlmAnswer(
            rid, answer.items, answer.raw_text, answer.error,
            latency_s=time.monotonic() - t0, batch_size=1, unknown=answer.unknown,
        )

    def _post(self, payload: bytes, deadline: float | None) -> tuple[str, str | None]:
        """(answer text, None) or (raw body, error). Retries connection errors and 5xx."""
        exc_mod = self._requests.exceptions
        attempt = 0
        while True:
            remaining = self.timeout_s
            if deadline is not None:
                remaining = min(remaining, deadline - time.monotonic())
            if remaining <= 0:
                return "", TIMEOUT
            try:
                resp = self._session.post(
                    self.endpoint, data=payload,
                    timeout=(min(self.connect_timeout_s, remaining), remaining),
                )
            except exc_mod.ConnectionError as exc:  # also ConnectTimeout: worth a retry
                if type(_innermost(exc)).__name__ == "ReadTimeoutError":
                    return "", TIMEOUT  # requests reports a timeout in the body this way
                error = f"server unreachable: {self.endpoint}: {_reason(exc)}"
            except exc_mod.Timeout:
                # The server took the request and is slow: a retry would only add load.
                return "", TIMEOUT
            except exc_mod.RequestException as exc:
                return "", f"request failed: {_reason(exc)}"
            else:
                if resp.status_code >= 400:
                    error = f"http error {resp.status_code}: {resp.text[:_SNIPPET].strip()}"
                    if resp.status_code < 500:
                        return resp.text[:_SNIPPET], error  # our fault: retrying cannot help
                else:
                    return self._content(resp)
            if attempt >= self.retries:
                return "", error
            attempt += 1
            pause = self.backoff_s * 2 ** (attempt - 1)
            if deadline is not None:
                pause = min(pause, max(0.0, deadline - time.monotonic()))
            time.sleep(pause)

    @staticmethod
    def _content(resp: requests.Response) -> tuple[str, str | None]:
        try:
            content = resp.json()["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            return resp.text[:_SNIPPET], "garbage response"
        if content is None:
            return "", None  # parsed as "empty answer"
        if isinstance(content, list):  # some servers answer with content parts
            content = "\n".join(
                str(part.get("text", "")) for part in content if isinstance(part, dict)
            )
        if not isinstance(content, str):
            return resp.text[:_SNIPPET], "garbage response"
        return content, None

    def _get_pool(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._closed:
                raise RuntimeError("OpenAiBackend is closed")
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.max_parallel, thread_name_prefix="vlm-http")
            return self._pool


def _innermost(exc: BaseException) -> BaseException:
    """The root cause of a requests error (urllib3 nests them deeply)."""
    for _ in range(10):
        inner = exc.__cause__
        if inner is None and exc.args and isinstance(exc.args[0], BaseException):
            inner = exc.args[0]
        if inner is None or inner is exc:
            break
        exc = inner
    return exc


def _reason(exc: BaseException) -> str:
    """The root cause of a requests error, short: "ConnectionRefusedError: [Errno 111] ..."."""
    root = _innermost(exc)
    text = str(root)
    if "[Errno" in text:
        text = text[text.index("[Errno"):]
    return f"{type(root).__name__}: {text}"[:_SNIPPET]
