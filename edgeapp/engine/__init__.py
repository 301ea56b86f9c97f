"""The headless core of edgeapp. Imports no Qt, no pyqtgraph, no torch, no ultralytics."""
