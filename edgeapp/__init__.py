"""edgeapp: order-accuracy checking for pick-up counters."""

from __future__ import annotations

__version__ = "0.1.0"
