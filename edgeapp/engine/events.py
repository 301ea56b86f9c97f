"""The event bus: frozen events (:mod:`edgeapp.engine.api`) delivered in order to clients.

``EventBus`` hands events to subscribers on its own thread from a bounded queue, so a slow
subscriber never stalls the pipeline threads that publish; a subscriber that raises is logged
and keeps getting events. What a full queue drops is counted (``dropped``, in
``Engine.status().queues.events_dropped``).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

from edgeapp.engine.api import EngineEvent

logger = logging.getLogger(__name__)

__all__ = ["EventBus", "Subscriber"]

Subscriber = Callable[[EngineEvent], None]

_STOP = object()


class EventBus:
    """Delivers published events to every subscriber, in order, on the ``engine-events``
    thread; ``start/stop/join``."""

    def __init__(self, size: int = 4096) -> None:
        self._queue: queue.Queue[object] = queue.Queue(size)
        self._subscribers: list[Subscriber] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="engine-events", daemon=True)
        self._dropped = 0

    @property
    def dropped(self) -> int:
        """Events dropped so far because the queue was full."""
        return self._dropped

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call ``callback(event)`` for every event from now on; returns unsubscribe."""
        with self._lock:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)
        return unsubscribe

    def publish(self, event: EngineEvent) -> None:
        """Queue ``event`` (never blocks: a full queue drops it, counted and logged)."""
        try:
            self._queue.put_nowait(event)
        except queue.Full:
            with self._lock:
                self._dropped += 1
            logger.warning("event queue full: %s dropped", type(event).__name__)

    def start(self) -> None:
        """Start delivering."""
        self._thread.start()

    def stop(self) -> None:
        """Deliver what is queued, then end."""
        self._queue.put(_STOP)

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the delivery thread; True when it has ended."""
        if self._thread.ident is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        while True:
            event = self._queue.get()
            if event is _STOP:
                return
            with self._lock:
                subscribers = list(self._subscribers)
            for callback in subscribers:
                try:
                    callback(event)  # type: ignore[arg-type]
                except Exception:
                    logger.exception("event subscriber %r failed on %s", callback,
                                     type(event).__name__)
