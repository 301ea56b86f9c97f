"""The operator window's panels, one concern each; the main window docks them in this order."""

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
