"""The synthetic order-station camera as a Source: same thread, states, pacing and delivery."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import numpy as np

from edgeapp.engine.sources.base import Source

if TYPE_CHECKING:
    from edgeapp.engine.orders.catalog import Catalog
    from edgeapp.engine.sources.synthetic import SyntheticScene


class SyntheticSource(Source):
    """Renders the demo counter in real time; frames carry the scene's ``FrameTruth``.

    Frames the pacer skips are advanced with ``scene.skip()`` and never drawn, so a lower
    target FPS really saves the rendering work.
    """

    live = False
    finite = False
    default_max_reconnects = 0  # a scene that cannot be built will not build on retry

    def __init__(self, *, stream_key: str, catalog: Catalog | None = None, width: int = 1280,
                 height: int = 720, fps: float = 15.0, seed: int = 0,
                 wrong_order_rate: float = 0.2, station_id: str | None = None,
                 **kwargs: Any) -> None:
        super().__init__(stream_key, **kwargs)
        self.catalog = catalog
        self.scene_args: dict[str, Any] = dict(
            width=width, height=height, fps=fps, seed=seed,
            wrong_order_rate=wrong_order_rate, station_id=station_id or stream_key,
        )
        self.scene: SyntheticScene | None = None

    def describe(self) -> str:
        """``synthetic (WxH @ fps, seed)``."""
        a = self.scene_args
        return f"synthetic ({a['width']}x{a['height']} @ {a['fps']} fps, seed {a['seed']})"

    def _open(self) -> tuple[float, int, int]:
        if self.scene is None:
            # Built here, on the source thread: loading the catalog and sprites takes a moment.
            from edgeapp.engine.orders.catalog import load_catalog
            from edgeapp.engine.sources.synthetic import SyntheticScene

            catalog = self.catalog if self.catalog is not None else load_catalog()
            self.scene = SyntheticScene(catalog, **self.scene_args)
        return self.scene.fps, self.scene.width, self.scene.height

    def _grab(self) -> bool:
        return self.scene is not None  # the next frame is always there; drawn only if taken

    def _retrieve(self) -> tuple[np.ndarray | None, Any]:
        assert self.scene is not None
        return self.scene.render()

    def _skip(self) -> None:
        assert self.scene is not None
        self.scene.skip()

    def _scale_truth(self, truth: Any, sx: float, sy: float) -> Any:
        # Boxes must match the delivered (scaled) image, or accuracy checks would compare
        # detections on a half-size frame with full-size truth.
        scale = np.array([sx, sy, sx, sy], np.float32)
        return dataclasses.replace(truth, boxes=truth.boxes * scale)
