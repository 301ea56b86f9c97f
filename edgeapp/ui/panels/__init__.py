"""The dock panels of the main window.

Each panel is ``class XPanel(QWidget)`` with a class attribute ``TITLE`` and
``__init__(self, bridge: EngineBridge, parent=None)``; it reads ``bridge.engine`` and listens
to the bridge's signals, and only renders and sends commands. The main window makes one
``QDockWidget`` per entry of ``PANELS``, named after the class, so the layout is remembered.
"""

from __future__ import annotations

PANELS: list[type] = []
