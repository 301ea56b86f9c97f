"""PNG plots of a benchmark report, drawn with OpenCV (the engine needs no plotting library).

Two figures: per-order latency (avg, p50, p95, p99) per scenario, and throughput (orders/s
over frames/s) per scenario. Bars only, labelled with their values; a figure that was not
measured is written "n/a" where its bar would be.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from edgeapp.engine.bench.measure import ScenarioResult

_FONT = cv2.FONT_HERSHEY_SIMPLEX
_INK = (40, 40, 40)
_GRID = (225, 225, 225)
# BGR: blue, green, orange, red (the order of avg, p50, p95, p99)
_COLOURS = ((180, 119, 31), (44, 160, 44), (14, 127, 255), (40, 39, 214))

Series = tuple[str, Sequence[float | None]]


def _nice_top(value: float) -> float:
    """A round axis top at or above ``value`` (1, 2, 2.5 or 5 times a power of ten)."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    return next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= value)


def _text(img: np.ndarray, text: str, x: int, y: int, scale: float = 0.45,
          centre: bool = False, colour: tuple[int, int, int] = _INK) -> None:
    if centre:
        (w, _), _ = cv2.getTextSize(text, _FONT, scale, 1)
        x -= w // 2
    cv2.putText(img, text, (x, y), _FONT, scale, colour, 1, cv2.LINE_AA)


def _fmt(value: float) -> str:
    return f"{value:.3g}" if value < 1000 else f"{value:.0f}"


def bar_panel(title: str, groups: Sequence[str], series: Sequence[Series], unit: str,
              width: int = 1000, height: int = 400) -> np.ndarray:
    """One grouped bar chart: a group per scenario, a bar per series."""
    img = np.full((height, width, 3), 255, np.uint8)
    left, right, top, bottom = 70, 20, 50, 60
    plot_w, plot_h = width - left - right, height - top - bottom
    known = [v for _, values in series for v in values if v is not None]
    y_top = _nice_top(max(known) if known else 1.0)
    _text(img, title, left, 28, 0.6)
    for k in range(5):  # grid and y ticks
        y = top + plot_h - round(plot_h * k / 4)
        cv2.line(img, (left, y), (left + plot_w, y), _GRID, 1)
        _text(img, _fmt(y_top * k / 4), 8, y + 4, 0.4)
    _text(img, unit, 8, top - 12, 0.4)
    cv2.line(img, (left, top + plot_h), (left + plot_w, top + plot_h), _INK, 1)
    slot = plot_w / max(1, len(groups))
    bar = max(4, min(40, int(slot * 0.8 / max(1, len(series)))))
    for g, group in enumerate(groups):
        x0 = left + slot * g + (slot - bar * len(series)) / 2
        for s, (_, values) in enumerate(series):
            value = values[g]
            x = int(x0 + s * bar)
            if value is None:
                _text(img, "n/a", x + bar // 2, top + plot_h - 6, 0.35, centre=True)
                continue
            y = top + plot_h - round(plot_h * min(value, y_top) / y_top)
            cv2.rectangle(img, (x + 1, y), (x + bar - 1, top + plot_h), _COLOURS[s % 4], -1)
            _text(img, _fmt(value), x + bar // 2, y - 4, 0.33, centre=True)
        _text(img, group[:22], int(left + slot * (g + 0.5)), top + plot_h + 20, 0.42,
              centre=True)
    x = left
    for s, (label, _) in enumerate(series):  # legend, under the axis
        cv2.rectangle(img, (x, height - 22), (x + 14, height - 10), _COLOURS[s % 4], -1)
        _text(img, label, x + 20, height - 11, 0.45)
        x += 30 + cv2.getTextSize(label, _FONT, 0.45, 1)[0][0]
    return img


def latency_plot(results: Sequence[ScenarioResult], path: Path) -> Path:
    """Per-order latency (order end → verdict) avg / p50 / p95 / p99 per scenario."""
    groups = [r.scenario.name for r in results]
    img = bar_panel("Order latency (order end -> verdict), every order", groups, [
        ("avg", [r.latency_avg_s for r in results]),
        ("p50", [r.latency_p50_s for r in results]),
        ("p95", [r.latency_p95_s for r in results]),
        ("p99", [r.latency_p99_s for r in results])], "s")
    _write(path, img)
    return path


def throughput_plot(results: Sequence[ScenarioResult], path: Path) -> Path:
    """Orders/s over frames/s, per scenario."""
    groups = [r.scenario.name for r in results]
    orders = bar_panel("Orders per second", groups,
                       [("orders/s", [r.orders_per_s for r in results])], "1/s", height=320)
    frames = bar_panel("Frames per second (detections back)", groups,
                       [("frames/s", [r.frames_per_s for r in results])], "1/s", height=320)
    _write(path, np.vstack([orders, frames]))
    return path


def _write(path: Path, img: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, data = cv2.imencode(".png", img)
    if not ok:
        raise OSError(f"could not encode the plot {path.name}")
    path.write_bytes(data.tobytes())
