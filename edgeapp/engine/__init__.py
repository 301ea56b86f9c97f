"""The headless core of edgeapp. Imports no Qt, no pyqtgraph, no torch, no ultralytics.

What clients see (status snapshots, events, states, the latest frame) is :mod:`edgeapp.engine.api`,
re-exported here; the facade is ``edgeapp.engine.engine.Engine``.
"""

from edgeapp.engine.api import *  # noqa: F403 - the contract, one import away
from edgeapp.engine.api import __all__  # noqa: F401
