"""One detector model read from disk, compiled once per input shape, with its infer requests.

Everything per pixel after the letterbox stays in the graph via ``PrePostProcessor``: the
input tensor is ``uint8`` BGR ``NHWC`` ``[1, H, W, 3]``, and u8->f32, BGR->RGB, ``/255`` and
NHWC->NCHW fuse into the first convolution (measured free against feeding the raw IR a ready
float tensor). So the graph is static per input shape: one compile per (model, ``H x W``) —
an input size and a frame aspect (see ``postprocess.letterbox``) — and the CPU plugin gets a
fully static graph. A compile costs about 0.5 s of CPU; a shape already compiled is served at
once, even while another one compiles.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from edgeapp.engine.vision.models import ModelInfo, read_detector
from edgeapp.errors import ModelError

if TYPE_CHECKING:
    import openvino as ov

log = logging.getLogger(__name__)

#: Compiled graphs kept per model (one per input shape: 4 resolution levels of two frame
#: aspects); the least recently used is dropped.
MAX_VARIANTS = 8
#: Infer requests per OpenVINO stream (see ``LoadedModel._compile``).
REQUESTS_PER_STREAM = 2

_core_lock = threading.Lock()
_core: ov.Core | None = None


def shared_core() -> ov.Core:
    """The process's one ``openvino.Core`` (plugins load once; compiled models share it)."""
    global _core
    with _core_lock:
        if _core is None:
            import openvino as ov

            _core = ov.Core()
        return _core


@dataclass
class Variant:
    """One compiled graph (model + in-graph pre-processing at one input shape), its requests."""

    compiled: Any
    requests: list[Any]  # openvino.InferRequest
    lock: threading.Lock = field(default_factory=threading.Lock)


class LoadedModel:
    """One model read from disk and checked, with its compiled variants."""

    def __init__(self, info: ModelInfo, device: str, ov_config: Mapping[str, Any]) -> None:
        self.info = info
        self.device = device
        self.ov_config = dict(ov_config)
        self.model, self.classes = read_detector(info, shared_core())
        self.max_input_size = info.input_size
        self._variants: OrderedDict[tuple[int, int], Variant] = OrderedDict()
        self._lock = threading.Lock()  # the cache: held for a lookup, never for a compile
        self._compiling = threading.Lock()  # compiles are serialised: never the same graph twice

    def variant(self, shape: tuple[int, int]) -> Variant:
        """The compiled graph for the input ``(height, width)`` (compiled on first use,
        cached). A cached shape is served at once, even while another thread compiles."""
        found = self._cached(shape)
        if found is not None:
            return found
        with self._compiling:
            found = self._cached(shape)
            if found is not None:
                return found
            found = self._compile(shape)
            with self._lock:
                self._variants[shape] = found
                while len(self._variants) > MAX_VARIANTS:
                    self._variants.popitem(last=False)
            return found

    def shapes(self) -> list[tuple[int, int]]:
        """The input ``(height, width)`` shapes compiled so far, smallest first."""
        with self._lock:
            return sorted(self._variants)

    def _cached(self, shape: tuple[int, int]) -> Variant | None:
        with self._lock:
            found = self._variants.get(shape)
            if found is not None:
                self._variants.move_to_end(shape)
            return found

    def _compile(self, shape: tuple[int, int]) -> Variant:
        import openvino as ov
        from openvino.preprocess import ColorFormat, PrePostProcessor

        model = self.model.clone()
        height, width = shape
        model.reshape({model.input(0): [1, 3, height, width]})
        ppp = PrePostProcessor(model)
        tensor = ppp.input().tensor()
        tensor.set_element_type(ov.Type.u8).set_layout(ov.Layout("NHWC"))
        tensor.set_color_format(ColorFormat.BGR)
        ppp.input().model().set_layout(ov.Layout("NCHW"))
        ppp.input().preprocess().convert_element_type(ov.Type.f32) \
            .convert_color(ColorFormat.RGB).scale(255.0)
        ppp.output(0).tensor().set_element_type(ov.Type.f32)
        try:
            compiled = shared_core().compile_model(ppp.build(), self.device, self.ov_config)
        except Exception as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise ModelError(f"{self.info.path}: cannot compile for {self.device} at input "
                             f"{width}x{height}: {first[:200]}") from exc
        optimal = max(1, int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")))
        # Twice the optimum: a ready request waits behind each busy stream, so no stream
        # idles while the calling thread letterboxes, post-processes or is descheduled.
        requests = [compiled.create_infer_request() for _ in range(REQUESTS_PER_STREAM * optimal)]
        log.debug("compiled %s at %dx%d (%d requests)", self.info.name, width, height,
                  len(requests))
        return Variant(compiled, requests)

    def close(self) -> None:
        """Wait for running requests and drop the compiled graphs."""
        with self._compiling, self._lock:
            for v in self._variants.values():
                with v.lock:  # a running batch holds it until its requests are done
                    pass
            self._variants.clear()
