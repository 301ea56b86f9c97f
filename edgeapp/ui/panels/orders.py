"""Orders: every verdict live, past ones from the results store, filters, detail, CSV export."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from PySide6.QtCore import QItemSelection, Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from edgeapp.engine.orders.result import OrderResult, OrderStatus
from edgeapp.engine.orders.store import ResultsStore, default_results_path, write_csv
from edgeapp.errors import EdgeAppError
from edgeapp.ui.panels.common import CRITICAL_COLOUR, MUTED_COLOUR, set_colour
from edgeapp.ui.panels.order_detail import OrderDetail
from edgeapp.ui.panels.orders_model import RESULT_ROLE, OrdersFilter, OrdersModel

# Past orders shown at open: enough for a shift; the store keeps everything.
PAST_ORDERS = 1000
ALL = "All"


class OrdersPanel(QWidget):
    """The live orders table with status / station filters, order-ID search, a detail view of
    the selected order and CSV export of the rows shown."""

    TITLE = "Orders"
    pastLoaded = Signal(object)  # list[OrderResult] | str (why the store could not be read)

    def __init__(self, bridge: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.bridge = bridge
        self.model = OrdersModel(self)
        self.proxy = OrdersFilter(self)
        self.proxy.setSourceModel(self.model)

        self.status_filter = QComboBox()
        self.status_filter.addItem("All statuses", None)
        for status in OrderStatus:
            self.status_filter.addItem(status.value, status.value)
        self.station_filter = QComboBox()
        self.station_filter.addItem("All stations", None)
        self.station_filter.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search order ID")
        self.search.setClearButtonEnabled(True)
        self.export_button = QPushButton("Export CSV…")
        self.count = QLabel()
        set_colour(self.count, MUTED_COLOUR)
        bar = QHBoxLayout()
        bar.addWidget(self.status_filter)
        bar.addWidget(self.station_filter)
        bar.addWidget(self.search, 1)
        bar.addWidget(self.export_button)
        self.search.setMinimumWidth(self.search.fontMetrics().horizontalAdvance(
            "Search order ID") + 40)

        self.table = QTableView()
        self.table.setModel(self.proxy)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setAlternatingRowColors(True)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(0, Qt.SortOrder.DescendingOrder)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(
            self.table.fontMetrics().height() + 8)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        # Columns as wide as their content usually is; a narrow dock scrolls, never clips.
        char = self.table.fontMetrics().averageCharWidth()
        for col, chars in enumerate((9, 10, 7, 10, 16, 16, 18, 8)):
            header.resizeSection(col, char * chars + 16)
        header.setStretchLastSection(True)

        self.detail = OrderDetail()
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.table)
        split.addWidget(self.detail)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        split.setChildrenCollapsible(False)
        # The detail shows only once an order is selected: until then its evidence strip's
        # minimum height would squeeze the table to two rows in a short dock.
        self.detail.hide()
        self._split = split
        lay = QVBoxLayout(self)
        lay.addLayout(bar)
        lay.addWidget(self.count)
        lay.addWidget(split, 1)

        self.status_filter.currentIndexChanged.connect(self._refilter)
        self.station_filter.currentIndexChanged.connect(self._refilter)
        self.search.textChanged.connect(self._refilter)
        self.export_button.clicked.connect(self._export_clicked)
        self.table.selectionModel().selectionChanged.connect(self._selected)
        self.proxy.rowsInserted.connect(self._count)
        self.proxy.rowsRemoved.connect(self._count)
        self.proxy.modelReset.connect(self._count)
        self.pastLoaded.connect(self._past_loaded)
        bridge.orderValidated.connect(self.add_result)
        self._loading = True
        self._load_error = ""
        self._count()
        self._load_past()

    # ── data in ──────────────────────────────────────────────────────────────────────────

    def add_result(self, result: OrderResult) -> None:
        """A new verdict: one row on top."""
        if self.model.add(result):
            self._add_station(result.station_id)

    def _load_past(self) -> None:
        """Read the newest stored results off the GUI thread (SQLite may wait on a lock)."""
        path = default_results_path(self.bridge.engine.config.data_dir)
        signal = self.pastLoaded

        def load() -> None:
            try:
                if not path.exists():
                    loaded: list[OrderResult] | str = []
                else:
                    with ResultsStore(path, create=False) as store:
                        loaded = store.recent(PAST_ORDERS)
            except EdgeAppError as exc:
                loaded = str(exc)
            try:
                signal.emit(loaded)
            except RuntimeError:  # the panel was closed meanwhile
                pass

        threading.Thread(target=load, name="ui-orders-past", daemon=True).start()

    def _past_loaded(self, loaded: list[OrderResult] | str) -> None:
        self._loading = False
        if isinstance(loaded, str):
            self._load_error = f"past orders not shown: {loaded}"
        else:
            self.model.add_past(loaded)
            for station in sorted({r.station_id for r in loaded}):
                self._add_station(station)
        self._count()

    # ── view ─────────────────────────────────────────────────────────────────────────────

    def _add_station(self, name: str) -> None:
        if self.station_filter.findData(name) < 0:
            self.station_filter.addItem(name, name)

    def _refilter(self) -> None:
        self.proxy.set_filter(status=self.status_filter.currentData(),
                              station=self.station_filter.currentData(),
                              search=self.search.text())
        self._count()

    def _count(self) -> None:
        total, shown = self.model.rowCount(), self.proxy.rowCount()
        if total == 0:
            text = ("loading past orders…" if self._loading
                    else "no orders yet: verdicts appear as stations finish orders")
        elif shown == total:
            text = f"{total} orders"
        else:
            text = f"{shown} of {total} orders shown"
        if total:
            text += " · select one for its items and evidence"
        if self._load_error:
            text = f"{text} ({self._load_error})"
        self.count.setText(text)
        set_colour(self.count, CRITICAL_COLOUR if self._load_error else MUTED_COLOUR)
        self.export_button.setEnabled(shown > 0)

    def _selected(self, selected: QItemSelection, _: QItemSelection) -> None:
        rows = self.table.selectionModel().selectedRows()
        result = self.proxy.data(rows[0], RESULT_ROLE) if rows else None
        self.detail.show_result(result)
        if result is not None and not self.detail.isVisibleTo(self):
            self.detail.show()
            total = sum(self._split.sizes())
            self._split.setSizes([total * 2 // 5, total * 3 // 5])
        elif result is None:
            self.detail.hide()

    def select_order(self, result_id: str) -> bool:
        """Select the row of ``result_id`` (if shown); True when found."""
        for row in range(self.proxy.rowCount()):
            index = self.proxy.index(row, 0)
            if self.proxy.data(index, RESULT_ROLE).result_id == result_id:
                self.table.selectRow(row)
                self.table.scrollTo(index)
                return True
        return False

    # ── export ───────────────────────────────────────────────────────────────────────────

    def export_csv(self, path: str | Path) -> int:
        """Write the rows shown (filters applied), oldest first, to ``path``; the count."""
        return write_csv(sorted(self.proxy.shown(), key=lambda r: r.created_at), path)

    def _export_clicked(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export orders as CSV", "orders.csv",
                                              "CSV files (*.csv)")
        if not path:
            return
        try:
            n = self.export_csv(path)
        except (OSError, EdgeAppError) as exc:
            QMessageBox.warning(self, "Export failed", f"Could not write {path}:\n{exc}")
            return
        self.count.setText(f"{n} orders written to {Path(path).name}")

