"""A bounded queue of stream entries waiting for Redis, that drops the right things first.

While Redis is down a station keeps what it reports: verdicts, VLM requests, its camera's and
its counter's state and its notices are kept; heartbeats, metrics and previews are dropped
first when the bound is reached (they are stale by the time Redis is back anyway). What is
still waiting when the station ends is written to a spool file and sent at its next start.
"""

from __future__ import annotations

import collections
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgpack

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Entry:
    """One XADD to make: stream, fields, its MAXLEN, and whether it may be dropped."""

    stream: str
    fields: dict[Any, Any]  # bytes -> bytes
    maxlen: int
    keep: bool


class Outbox:
    """Entries in order; ``limit`` in all (droppable ones go first when full)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._items: collections.deque[Entry] = collections.deque()
        self._cond = threading.Condition()
        self.dropped = 0  # droppable entries dropped for room
        self.lost = 0  # entries that had to be kept but found no room (the bound was hit)

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)

    def put(self, entry: Entry) -> None:
        """Queue ``entry`` (wakes the sender)."""
        with self._cond:
            if len(self._items) >= self.limit and not self._make_room():
                if not entry.keep:
                    self.dropped += 1
                    return
                self._items.popleft()
                self.lost += 1
            self._items.append(entry)
            self._cond.notify_all()

    def put_front(self, entries: list[Entry]) -> None:
        """Give back entries that could not be sent (they go first again)."""
        with self._cond:
            self._items.extendleft(reversed(entries))
            while len(self._items) > self.limit and self._make_room():
                pass
            self._cond.notify_all()

    def take(self, most: int, timeout: float) -> list[Entry]:
        """Up to ``most`` entries, waiting up to ``timeout`` s for the first."""
        with self._cond:
            if not self._items:
                self._cond.wait(timeout)
            out: list[Entry] = []
            while self._items and len(out) < most:
                out.append(self._items.popleft())
            if not self._items:
                self._cond.notify_all()  # for wait_empty
            return out

    def wait_empty(self, timeout: float) -> bool:
        """Wait until everything queued was taken; True when it was."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._items, timeout)

    def wake(self) -> None:
        """Make a waiting ``take`` return."""
        with self._cond:
            self._cond.notify_all()

    def spool(self, path: Path, skip: str = "") -> int:
        """Write the entries that must not be lost to ``path`` (not those for stream
        ``skip``); how many were written."""
        with self._cond:
            keep = [(e.stream, e.fields, e.maxlen) for e in self._items
                    if e.keep and e.stream != skip]
            self._items.clear()
        if not keep:
            return 0
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(msgpack.packb(keep, use_bin_type=True))
        os.replace(tmp, path)
        return len(keep)

    def unspool(self, path: Path) -> int:
        """Queue what an earlier process spooled to ``path`` (first) and remove the file."""
        try:
            data = msgpack.unpackb(path.read_bytes(), raw=False, strict_map_key=False)
        except FileNotFoundError:
            return 0
        except (OSError, ValueError, msgpack.UnpackException) as exc:
            logger.error("spool %s unreadable, left in place: %s", path, exc)
            return 0
        entries = [Entry(str(s), dict(f), int(n), True) for s, f, n in data]
        self.put_front(entries)
        path.unlink(missing_ok=True)
        return len(entries)

    def _make_room(self) -> bool:
        for i, item in enumerate(self._items):
            if not item.keep:
                del self._items[i]
                self.dropped += 1
                return True
        return False
