"""Colours and words of the tiles: verdicts, health, detection classes."""

from __future__ import annotations

import colorsys
import functools

from PySide6.QtGui import QColor

from edgeapp.ui.tiles.model import Health

VERDICT_COLOURS = {
    "validated": QColor("#2e7d32"),   # green: the bag is right
    "mismatch": QColor("#c62828"),    # red: missing / extra / wrong count
    "unreadable": QColor("#ef6c00"),  # orange: no ticket read, nobody knows
    "failed": QColor("#5e35b1"),      # violet: the system failed (VLM error, station stop)
}
HEALTH_COLOURS = {
    Health.OK: QColor("#43a047"),
    Health.SLOW: QColor("#fbc02d"),
    Health.DOWN: QColor("#e53935"),
    Health.IDLE: QColor("#9e9e9e"),
}
BACKGROUND = QColor("#15171a")
BAND = QColor(0, 0, 0, 165)          # behind the text on top of a frame
DIM = QColor(10, 12, 14, 170)         # over a frame that is not live
TEXT = QColor("#f2f2f2")
MUTED = QColor("#b8bcc2")


@functools.lru_cache(maxsize=256)
def class_colour(index: int) -> QColor:
    """A distinct, stable colour for detection class ``index`` (golden-ratio hues)."""
    hue = (index * 0.618033988749895) % 1.0
    r, g, b = colorsys.hsv_to_rgb(hue, 0.75, 0.95)
    return QColor(int(r * 255), int(g * 255), int(b * 255))
