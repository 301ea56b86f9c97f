"""Everything a station process needs to run, as one picklable record built from the config."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edgeapp.config import Config, StationConfig


@dataclass(frozen=True)
class StationSettings:
    """One station's camera, order logic and output folder (sent to its process at spawn)."""

    name: str
    source: str
    orders_path: Path
    inventory_path: Path
    data_dir: Path
    ticket_class: int | None
    loop: bool = False
    fps: float = 15.0  # the camera's own rate (synthetic: its render rate)
    width: int = 1280
    height: int = 720
    seed: int = 0
    wrong_order_rate: float = 0.2
    fps_level: float = 1.0  # pacer target as a fraction of the camera's FPS
    scale: float = 1.0  # frame size as a fraction of the camera's
    clear_seconds: float = 1.0
    camera_hold_s: float = 10.0  # an open order waits this long for its camera to come back
    pre_buffer_frames: int = 8
    top_k_frames: int = 2
    vlm_timeout_s: float = 10.0
    live_slots: int = 8  # frames in flight to the workers that the engine can still copy
    order_slots: int = 4  # orders whose VLM frames can wait for an answer at once
    max_held_frames: int = 48  # frames waiting for their detections, kept in the station
    stats_interval_s: float = 1.0

    @classmethod
    def from_config(cls, config: Config, station: StationConfig, *, ticket_class: int | None,
                    fps_level: float, scale: float) -> StationSettings:
        """Settings of ``station`` under ``config`` at the given stream parameters."""
        return cls(
            name=station.name, source=station.source, orders_path=config.orders_path,
            inventory_path=config.inventory_path, data_dir=config.data_dir,
            ticket_class=ticket_class, loop=station.loop, fps=station.fps,
            width=station.width, height=station.height, seed=station.seed,
            wrong_order_rate=station.wrong_order_rate, fps_level=fps_level, scale=scale,
            clear_seconds=config.orders.clear_seconds,
            camera_hold_s=config.orders.camera_hold_s,
            pre_buffer_frames=config.orders.pre_buffer_frames,
            top_k_frames=config.vlm.top_k_frames, vlm_timeout_s=config.vlm.timeout_s,
        )
