"""One order in detail: its verdict, expected against detected items, and the evidence frames."""

from __future__ import annotations

import os
from typing import Any

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QImageReader, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QScrollArea,
    QSplitter,
    QStackedWidget,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from edgeapp.engine.orders.result import OrderResult
from edgeapp.ui.panels.common import (
    CRITICAL_COLOUR,
    MUTED_COLOUR,
    NA,
    OK_COLOUR,
    ORDER_COLOURS,
    WARNING_COLOUR,
    clock,
    placeholder,
    set_colour,
)

THUMB_HEIGHT = 180


def item_rows(result: OrderResult) -> list[tuple[str, int, int, str]]:
    """``(item, expected, detected, verdict)`` for every item ordered or seen."""
    names = sorted(set(result.expected_items) | set(result.detected_items))
    rows = []
    for name in names:
        want, got = result.expected_items.get(name, 0), result.detected_items.get(name, 0)
        verdict = ("ok" if want == got else "missing" if got == 0 else "extra" if want == 0
                   else "wrong quantity")
        rows.append((name, want, got, verdict))
    return rows


class OrderDetail(QWidget):
    """The selected order: a heading, the items table and the evidence thumbnails."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.result: OrderResult | None = None
        self._stack = QStackedWidget(self)
        self._stack.addWidget(placeholder(
            "Select an order to see what was expected, what was detected and the evidence "
            "frames the verdict was made on."))
        body = QWidget()
        self._heading = QLabel()
        self._heading.setTextFormat(Qt.TextFormat.RichText)
        self._heading.setWordWrap(True)
        self._reason = QLabel()
        self._reason.setWordWrap(True)
        self.items = QTableWidget(0, 4)
        self.items.setHorizontalHeaderLabels(["Item", "Expected", "Detected", ""])
        self.items.verticalHeader().hide()
        self.items.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.items.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        header = self.items.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for col in (1, 2, 3):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        # wide enough for "wrong quantity" and an item name; the evidence gets the rest
        self._items_width = self.fontMetrics().averageCharWidth() * 44
        self._frames = QWidget()
        self._frames_layout = QHBoxLayout(self._frames)
        self._frames_layout.setContentsMargins(0, 0, 0, 0)
        scroll = QScrollArea()
        scroll.setWidget(self._frames)
        scroll.setWidgetResizable(True)
        scroll.setMinimumHeight(THUMB_HEIGHT + 40)
        split = self._split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.items)
        split.addWidget(scroll)
        split.setStretchFactor(0, 1)
        split.setStretchFactor(1, 2)
        lay = QVBoxLayout(body)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self._heading)
        lay.addWidget(self._reason)
        lay.addWidget(split, 1)
        self._stack.addWidget(body)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(self._stack)

    def resizeEvent(self, event: Any) -> None:  # noqa: N802 - Qt's name
        """Items beside the evidence where there is room, above it in a narrow dock."""
        super().resizeEvent(event)
        wide = event.size().width() >= self._items_width + 2 * THUMB_HEIGHT * 16 // 9
        orientation = Qt.Orientation.Horizontal if wide else Qt.Orientation.Vertical
        if self._split.orientation() != orientation:
            self._split.setOrientation(orientation)
        self.items.setMaximumWidth(self._items_width * 4 // 3 if wide else 16_777_215)

    def show_result(self, result: OrderResult | None) -> None:
        """Show ``result`` (None: the hint to select one)."""
        self.result = result
        if result is None:
            self._stack.setCurrentIndex(0)
            return
        self._stack.setCurrentIndex(1)
        colour = ORDER_COLOURS.get(result.status.value, MUTED_COLOUR).name()
        latency = NA if result.latency_s is None else f"{result.latency_s:.2f} s"
        self._heading.setText(
            f"<b>Order {result.order_id}</b> · {result.station_id} · "
            f"<b style='color:{colour}'>{result.status.value.upper()}</b> · "
            f"{clock(result.created_at)} · latency {latency} · "
            f"accuracy {result.accuracy * 100:.0f} % · {result.num_frames} frames")
        self._reason.setText(result.reason or "")
        self._reason.setVisible(bool(result.reason))
        self._fill_items(result)
        self._fill_frames(result)

    def _fill_items(self, result: OrderResult) -> None:
        rows = item_rows(result)
        self.items.setRowCount(len(rows))
        colours = {"ok": OK_COLOUR, "missing": CRITICAL_COLOUR, "extra": CRITICAL_COLOUR,
                   "wrong quantity": WARNING_COLOUR}
        for i, (name, want, got, verdict) in enumerate(rows):
            cells = (name, str(want), str(got), verdict)
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if col in (1, 2):
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight
                                          | Qt.AlignmentFlag.AlignVCenter)
                if col == 3:
                    item.setForeground(colours[verdict])
                self.items.setItem(i, col, item)
        if not rows:
            self.items.setRowCount(1)
            self.items.setItem(0, 0, QTableWidgetItem("no items expected or detected"))

    def _fill_frames(self, result: OrderResult) -> None:
        while self._frames_layout.count():
            old = self._frames_layout.takeAt(0).widget()
            if old is not None:
                old.deleteLater()
        for path in result.evidence:
            self._frames_layout.addWidget(_thumbnail(path))
        if not result.evidence:
            self._frames_layout.addWidget(placeholder("no evidence frames were kept"))
        self._frames_layout.addStretch(1)

    def evidence_labels(self) -> list[QLabel]:
        """The thumbnails shown (for tests and screenshots)."""
        return [w for w in self._frames.findChildren(QLabel) if w.property("evidence")]


def _thumbnail(path: str) -> QLabel:
    """An evidence frame scaled down while it is decoded (a small read, on select only)."""
    label = QLabel()
    label.setToolTip(path)
    label.setProperty("evidence", path)
    reader = QImageReader(path)
    size = reader.size()
    if os.path.exists(path) and size.isValid() and size.height() > 0:
        reader.setScaledSize(QSize(round(size.width() * THUMB_HEIGHT / size.height()),
                                   THUMB_HEIGHT))
        image = reader.read()
        if not image.isNull():
            label.setPixmap(QPixmap.fromImage(image))
            return label
    label.setText(f"evidence frame not readable:\n{os.path.basename(path)}")
    label.setProperty("evidence", "")
    set_colour(label, CRITICAL_COLOUR)
    return label
