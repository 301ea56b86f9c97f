"""The orders table's model (newest first, rows inserted, never rebuilt) and its filter."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
)

from edgeapp.engine.orders.result import OrderResult
from edgeapp.ui.panels.common import NA, ORDER_COLOURS, clock

COLUMNS = ("Time", "Station", "Order", "Status", "Missing", "Extra", "Quantity", "Latency")
RESULT_ROLE = Qt.ItemDataRole.UserRole
SORT_ROLE = Qt.ItemDataRole.UserRole + 1
# An operator's day is a few thousand orders; beyond this the oldest rows leave the table
# (they stay in the results store).
MAX_ROWS = 20_000

Index = QModelIndex | QPersistentModelIndex


def _items(names: Iterable[str]) -> str:
    return ", ".join(names) or "—"


def _quantities(result: OrderResult) -> str:
    return ", ".join(f"{q.name} {q.expected}→{q.detected}"
                     for q in result.quantity_mismatch) or "—"


class OrdersModel(QAbstractTableModel):
    """Order results, newest in row 0; ``add`` inserts one row, ``add_past`` merges history."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._rows: list[OrderResult] = []   # oldest first: row r shows _rows[-1 - r]
        self._ids: set[str] = set()

    # ── Qt model ─────────────────────────────────────────────────────────────────────────

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: N802, B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: N802, B008
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation,  # noqa: N802
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return COLUMNS[section]
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        r = self.result(index.row())
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(r, col)
        if role == RESULT_ROLE:
            return r
        if role == SORT_ROLE:
            return self._sort_key(r, col)
        if role == Qt.ItemDataRole.ForegroundRole and col == 3:
            return ORDER_COLOURS.get(r.status.value)
        if role == Qt.ItemDataRole.ToolTipRole:
            return r.reason or None
        if role == Qt.ItemDataRole.TextAlignmentRole and col == 7:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    # ── rows ─────────────────────────────────────────────────────────────────────────────

    def result(self, row: int) -> OrderResult:
        """The result shown in ``row``."""
        return self._rows[len(self._rows) - 1 - row]

    def results(self) -> list[OrderResult]:
        """Every result held, oldest first."""
        return list(self._rows)

    def add(self, result: OrderResult) -> bool:
        """Show a new verdict on top (one row inserted); False if it is already shown."""
        if result.result_id in self._ids:
            return False
        if self._rows and result.created_at < self._rows[-1].created_at:
            self.add_past([result])  # late: it belongs further down
            return True
        self.beginInsertRows(QModelIndex(), 0, 0)
        self._rows.append(result)
        self._ids.add(result.result_id)
        self.endInsertRows()
        self._trim()
        return True

    def add_past(self, results: Iterable[OrderResult]) -> int:
        """Merge results from the store (any order); returns how many were new."""
        new = [r for r in results if r.result_id not in self._ids]
        if not new:
            return 0
        # One reset at open (when the store's history arrives), not per live verdict.
        self.beginResetModel()
        self._rows.extend(new)
        self._rows.sort(key=lambda r: r.created_at)
        self._ids.update(r.result_id for r in new)
        del self._rows[:-MAX_ROWS]
        self._ids = {r.result_id for r in self._rows}
        self.endResetModel()
        return len(new)

    def _trim(self) -> None:
        if len(self._rows) > MAX_ROWS:
            last = len(self._rows) - 1
            self.beginRemoveRows(QModelIndex(), last, last)
            self._ids.discard(self._rows.pop(0).result_id)
            self.endRemoveRows()

    # ── cells ────────────────────────────────────────────────────────────────────────────

    @staticmethod
    def _text(r: OrderResult, col: int) -> str:
        if col == 0:
            return clock(r.created_at)
        if col == 1:
            return r.station_id
        if col == 2:
            return r.order_id
        if col == 3:
            return r.status.value
        if col == 4:
            return _items(r.missing)
        if col == 5:
            return _items(r.extra)
        if col == 6:
            return _quantities(r)
        return NA if r.latency_s is None else f"{r.latency_s:.2f} s"

    @staticmethod
    def _sort_key(r: OrderResult, col: int) -> Any:
        if col == 0:
            return r.created_at
        if col == 7:
            return -1.0 if r.latency_s is None else r.latency_s
        return OrdersModel._text(r, col)


class OrdersFilter(QSortFilterProxyModel):
    """Shows the rows of one status and one station whose order ID contains the search."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.status: str | None = None
        self.station: str | None = None
        self.search = ""
        self.setSortRole(SORT_ROLE)
        self.setDynamicSortFilter(True)

    def set_filter(self, *, status: str | None, station: str | None, search: str) -> None:
        """Filter by ``status`` and ``station`` (None: any) and an order ID substring."""
        if hasattr(self, "endFilterChange"):  # Qt >= 6.10; invalidateRowsFilter is deprecated
            self.beginFilterChange()
            self.status, self.station, self.search = status, station, search.strip().lower()
            self.endFilterChange(QSortFilterProxyModel.Direction.Rows)
        else:
            self.status, self.station, self.search = status, station, search.strip().lower()
            self.invalidateRowsFilter()

    def filterAcceptsRow(self, row: int, parent: Index) -> bool:  # noqa: N802
        model = self.sourceModel()
        assert isinstance(model, OrdersModel)
        r = model.result(row)
        return ((self.status is None or r.status.value == self.status)
                and (self.station is None or r.station_id == self.station)
                and (not self.search or self.search in r.order_id.lower()))

    def shown(self) -> list[OrderResult]:
        """The results shown, top to bottom."""
        return [self.data(self.index(row, 0), RESULT_ROLE) for row in range(self.rowCount())]
