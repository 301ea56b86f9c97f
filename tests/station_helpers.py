"""A station's main loop in-process (a thread and a Pipe), with the test as its engine: real
detections from the shipped detector, and a VLM that answers what it is shown."""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from edgeapp.engine.orders.catalog import TICKET_CLASS, load_catalog
from edgeapp.engine.orders.result import OrderResult
from edgeapp.engine.stations import messages as m
from edgeapp.engine.stations.ring import FrameRing
from edgeapp.engine.stations.settings import StationSettings
from edgeapp.engine.stations.station import Station
from edgeapp.engine.vision.detector import Detector, open_detector

# answer(ask) -> the item list the VLM gives for the order (None: it fails)
Answer = Callable[[m.VlmAsk], "dict[str, int] | None"]


def seen_items(ask: m.VlmAsk) -> dict[str, int]:
    """A VLM that reads the frames it is given: the items of the fullest selected frame, as
    the station's detector saw them (a bag seen half packed reads as half the order)."""
    names = load_catalog().class_names
    best: Counter[str] = Counter()
    for dets in ask.detections:
        counts = Counter(names[int(c)] for c in dets[:, 5] if names[int(c)] != TICKET_CLASS)
        if sum(counts.values()) > sum(best.values()):
            best = counts
    return dict(best)


class StationHarness:
    """Runs ``Station(settings)`` on a thread and serves it as the engine would.

    ``serve(until, timeout)`` handles the station's messages until ``until()`` holds; every
    message is kept (``messages``), and ``react(message)`` lets the test act on one.
    """

    def __init__(self, settings: StationSettings, answer: Answer = seen_items,
                 react: Callable[[Any], None] | None = None) -> None:
        self.settings = settings
        self.answer = answer
        self.react = react
        self.engine_end, station_end = multiprocessing.Pipe()
        self.station = Station(settings, station_end)
        self.thread = threading.Thread(target=self.station.run, name="station-under-test")
        self.rings: dict[str, FrameRing] = {}
        self.messages: list[Any] = []
        self.detector: Detector | None = None

    def __enter__(self) -> StationHarness:
        self.detector = open_detector()
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.station.stop()
        self.thread.join(15)
        if self.detector is not None:
            self.detector.close()
        for ring in self.rings.values():
            ring.close()
            ring.unlink()
        self.engine_end.close()
        assert not self.thread.is_alive(), "the station's loop ended"

    def of(self, kind: type) -> list[Any]:
        """The messages of one type so far."""
        return [msg for msg in self.messages if isinstance(msg, kind)]

    def results(self) -> list[OrderResult]:
        """Every verdict so far."""
        return [OrderResult.from_dict(msg.result) for msg in self.of(m.ResultReady)]

    def send(self, message: object) -> None:
        """A message to the station, as the engine would post it."""
        self.engine_end.send(message)

    def serve(self, until: Callable[[], bool], timeout: float, what: str) -> None:
        """Serve the station until ``until()``; fail after ``timeout`` s saying ``what``."""
        assert self.detector is not None
        deadline = time.monotonic() + timeout
        while not until():
            assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for " \
                f"{what}; last messages: {self._recent()}"
            if not self.thread.is_alive() and not self.engine_end.poll(0):
                raise AssertionError(f"the station ended before {what}")
            if not self.engine_end.poll(0.1):
                continue
            try:
                msg = self.engine_end.recv()
            except EOFError:
                continue
            self.messages.append(msg)
            self._handle(msg)
            if self.react is not None:
                self.react(msg)

    def _handle(self, msg: Any) -> None:
        if isinstance(msg, m.RingOpened):
            old = self.rings.get(msg.kind)
            self.rings[msg.kind] = FrameRing.attach(msg.spec)
            if old is not None:
                old.close()
                old.unlink()
        elif isinstance(msg, m.FrameReady):
            frame = self.rings["live"].read(msg.slot, msg.seq)
            if frame is not None:
                assert self.detector is not None
                self.send(m.Detections(msg.seq, self.detector.detect(frame.image)))
        elif isinstance(msg, m.VlmAsk):
            items = self.answer(msg)
            self.send(m.VlmReply(msg.request_id, items, None if items is not None else "down"))

    def _recent(self) -> list[str]:
        keep = (m.SourceStateChanged, m.OrderUpdate, m.ResultReady, m.StationNotice, m.VlmAsk)
        return [repr(msg)[:160] for msg in self.messages if isinstance(msg, keep)][-8:]


def first_index(messages: list[Any], test: Callable[[Any], bool]) -> int:
    """Where the first message passing ``test`` is (a large number if none)."""
    return next((i for i, msg in enumerate(messages) if test(msg)), 1 << 30)

