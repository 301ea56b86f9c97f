"""Camera tiles: the grid, one tile per station, and what each tile says."""

from __future__ import annotations

from edgeapp.ui.tiles.grid import TileGrid

__all__ = ["TileGrid"]
