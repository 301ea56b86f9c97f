"""Station messages as Redis stream entries, and back (validated: a bad entry is refused).

An entry is ``{t: type, s: station, d: msgpack dict}``, plus ``f0``, ``f1`` … JPEG frames for a
VLM request (at a quality close to the original: raw frames, ten times the bytes, made the
round trip slower, not faster — README, Stations on other machines) or a preview (lower: a
tile needs less). No pickle: a Redis server is shared ground. Detections (``(N, 6)``
float32) travel as raw bytes with their row count.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import msgpack
import numpy as np

from edgeapp.engine.stations import messages as m
from edgeapp.errors import InputError

_JPEG_QUALITY = 92  # the VLM reads these frames: close to the original, a tenth of its size
_PREVIEW_QUALITY = 70
_MAX_FRAMES = 32


@dataclass(frozen=True)
class Heartbeat:
    """A station is alive; what it watches, where it runs, and since when."""

    source: str
    host: str
    pid: int
    started: float


@dataclass(frozen=True)
class Bye:
    """The station's process ends (``code`` 0: it was asked to, or stopped by its operator)."""

    code: int
    reason: str


@dataclass(frozen=True)
class Resync:
    """Engine → station: a new engine listens; tell it your camera and order again."""


@dataclass(frozen=True)
class Preview:
    """A station's newest frame, for its tile."""

    seq: int
    capture_ts: float
    image: np.ndarray


@dataclass(frozen=True)
class Ask:
    """A VLM request with its frames (what ``VlmAsk`` points to in a local ring)."""

    ask: m.VlmAsk
    frames: tuple[np.ndarray, ...]


def encode(station: str, message: object) -> dict[Any, Any]:
    """``message`` of ``station`` as stream-entry fields."""
    kind, data, frames = _parts(message)
    fields = {b"t": kind.encode(), b"s": station.encode(),
              b"d": msgpack.packb(data, use_bin_type=True)}
    for i, image in enumerate(frames):
        fields[f"f{i}".encode()] = jpeg(image, _PREVIEW_QUALITY if kind == "preview"
                                        else _JPEG_QUALITY)
    return fields


def decode(fields: dict[bytes, bytes]) -> tuple[str, object]:
    """(station, message) of stream-entry fields; ``InputError`` when malformed."""
    try:
        kind = fields[b"t"].decode()
        station = fields[b"s"].decode()
        data = msgpack.unpackb(fields[b"d"], raw=False, max_bin_len=64 << 20,
                               max_str_len=1 << 20, max_array_len=10_000, max_map_len=1_000)
        if not isinstance(data, dict):
            raise TypeError("payload is not a mapping")
        return station, _build(kind, data, fields)
    except (KeyError, TypeError, ValueError, UnicodeDecodeError, msgpack.UnpackException,
            cv2.error) as exc:
        raise InputError(f"bad Redis entry ({type(exc).__name__}: {exc})") from None


def jpeg(image: np.ndarray, quality: int = _JPEG_QUALITY) -> bytes:
    """``image`` (BGR) as JPEG bytes."""
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise InputError(f"cannot encode a {image.shape} frame as JPEG")
    return buf.tobytes()


def unjpeg(data: bytes) -> np.ndarray:
    """JPEG bytes as a BGR image; ``ValueError`` when they are not one."""
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError("not a JPEG image")
    return image


def _dets(arrays: tuple[np.ndarray, ...]) -> list[bytes]:
    return [np.ascontiguousarray(a, np.float32).reshape(-1, 6).tobytes() for a in arrays]


def _undets(blobs: list[bytes]) -> tuple[np.ndarray, ...]:
    out = []
    for blob in blobs:
        if not isinstance(blob, bytes) or len(blob) % 24:
            raise ValueError("detections are not (N, 6) float32")
        out.append(np.frombuffer(blob, np.float32).reshape(-1, 6).copy())
    return tuple(out)


def _parts(message: object) -> tuple[str, dict[str, Any], tuple[np.ndarray, ...]]:
    if isinstance(message, Ask):
        a = message.ask
        return "ask", {"request_id": a.request_id, "order_id": a.order_id,
                       "seqs": list(a.seqs), "dets": _dets(a.detections)}, message.frames
    if isinstance(message, Preview):
        return "preview", {"seq": message.seq, "ts": message.capture_ts}, (message.image,)
    if isinstance(message, m.ResultReady):
        return "result", {"result": message.result}, ()
    if isinstance(message, m.OrderUpdate):
        return "order", {"busy": message.busy, "order_id": message.order_id,
                         "started_ts": message.started_ts}, ()
    if isinstance(message, m.SourceStateChanged):
        return "camera", {"state": message.state, "reason": message.reason}, ()
    if isinstance(message, m.StationStats):
        return "stats", dict(vars(message)), ()
    if isinstance(message, m.StationNotice):
        return "notice", {"severity": message.severity, "text": message.text,
                          "part": message.part}, ()
    if isinstance(message, Heartbeat):
        return "hb", dict(vars(message)), ()
    if isinstance(message, Bye):
        return "bye", {"code": message.code, "reason": message.reason}, ()
    if isinstance(message, m.VlmReply):
        return "reply", {"request_id": message.request_id, "items": message.items,
                         "error": message.error, "unknown": list(message.unknown),
                         "queued_s": message.queued_s, "latency_s": message.latency_s,
                         "batch_size": message.batch_size}, ()
    if isinstance(message, m.SetParameters):
        return "params", {"fps_level": message.fps_level, "scale": message.scale}, ()
    if isinstance(message, m.Stop):
        return "stop", {"finish_order": message.finish_order, "deadline_s": message.deadline_s,
                        "reason": message.reason}, ()
    if isinstance(message, Resync):
        return "resync", {}, ()
    raise InputError(f"{type(message).__name__} does not travel through Redis")


def _frames(fields: dict[bytes, bytes], count: int) -> tuple[np.ndarray, ...]:
    if not 0 <= count <= _MAX_FRAMES:
        raise ValueError(f"{count} frames")
    return tuple(unjpeg(fields[f"f{i}".encode()]) for i in range(count))


def _build(kind: str, d: dict[str, Any], fields: dict[bytes, bytes]) -> object:
    if kind == "ask":
        seqs = tuple(int(s) for s in d["seqs"])
        frames = _frames(fields, len(seqs))
        dets = _undets(d["dets"])
        if len(dets) != len(seqs):
            raise ValueError("one detections array per frame expected")
        ask = m.VlmAsk(str(d["request_id"]), _opt_str(d["order_id"]),
                       tuple(range(len(seqs))), seqs, dets)
        return Ask(ask, frames)
    if kind == "preview":
        (image,) = _frames(fields, 1)
        return Preview(int(d["seq"]), float(d["ts"]), image)
    if kind == "result":
        if not isinstance(d["result"], dict):
            raise TypeError("result is not a mapping")
        return m.ResultReady(d["result"])
    if kind == "order":
        started = d["started_ts"]
        return m.OrderUpdate(bool(d["busy"]), _opt_str(d["order_id"]),
                             None if started is None else float(started))
    if kind == "camera":
        return m.SourceStateChanged(str(d["state"]), str(d["reason"]))
    if kind == "stats":
        return m.StationStats(**{k: d[k] for k in m.StationStats.__dataclass_fields__})
    if kind == "notice":
        return m.StationNotice(str(d["severity"]), str(d["text"]), str(d.get("part", "")))
    if kind == "hb":
        return Heartbeat(str(d["source"]), str(d["host"]), int(d["pid"]), float(d["started"]))
    if kind == "bye":
        return Bye(int(d["code"]), str(d["reason"]))
    if kind == "reply":
        items = d["items"]
        if items is not None:
            items = {str(k): int(v) for k, v in items.items()}
        return m.VlmReply(str(d["request_id"]), items, _opt_str(d["error"]),
                          tuple(str(u) for u in d["unknown"]), float(d["queued_s"]),
                          float(d["latency_s"]), int(d["batch_size"]))
    if kind == "params":
        return m.SetParameters(float(d["fps_level"]), float(d["scale"]))
    if kind == "stop":
        return m.Stop(bool(d["finish_order"]), float(d["deadline_s"]), str(d["reason"]))
    if kind == "resync":
        return Resync()
    raise ValueError(f"unknown entry type {kind!r}")


def _opt_str(value: object) -> str | None:
    return None if value is None else str(value)
