"""The dock panels of the main window, one concern each.

Each panel is ``class XPanel(QWidget)`` with a class attribute ``TITLE`` and
``__init__(self, bridge: EngineBridge, parent=None)``; it reads ``bridge.engine`` and listens
to the bridge's signals, and only renders and sends commands. The main window makes one
``QDockWidget`` per entry of ``PANELS`` (in this order), named after the class, so the layout
is remembered.
"""

from __future__ import annotations

from edgeapp.ui.panels.control import ControlPanel
from edgeapp.ui.panels.history import HistoryPanel
from edgeapp.ui.panels.metrics import MetricsPanel
from edgeapp.ui.panels.notifications import NotificationsPanel
from edgeapp.ui.panels.orders import OrdersPanel
from edgeapp.ui.panels.settings import SettingsPanel
from edgeapp.ui.panels.slos import SloPanel
from edgeapp.ui.panels.workers import WorkersPanel

PANELS: list[type] = [OrdersPanel, SloPanel, ControlPanel, HistoryPanel, MetricsPanel,
                      WorkersPanel, NotificationsPanel, SettingsPanel]

__all__ = ["PANELS", "ControlPanel", "HistoryPanel", "MetricsPanel", "NotificationsPanel",
           "OrdersPanel", "SettingsPanel", "SloPanel", "WorkersPanel"]
