"""Shared fixtures: Qt offscreen, a throw-away data folder, no leaked threads or processes.

A test that leaves a thread running (a daemon one too: a daemon that outlives its test is a
part that was not stopped) or a child process fails, naming what it left and what runs in it.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import threading
import time

import psutil
import pytest
from zmq.utils import garbage as zmq_garbage

# Set before anything imports Qt or asks platformdirs where the data folder is: tests never
# open windows on the desktop and never write into the user's real edgeapp data folder.
os.environ["QT_QPA_PLATFORM"] = "offscreen"
_DATA_HOME = tempfile.mkdtemp(prefix="edgeapp-tests-data-")
os.environ["XDG_DATA_HOME"] = _DATA_HOME
atexit.register(shutil.rmtree, _DATA_HOME, ignore_errors=True)

# pyzmq frees zero-copy buffers on one garbage-collector thread per process, started on the
# first copy=False send and kept until exit: started here, so no test is blamed for it.
zmq_garbage.gc.start()

LEAK_GRACE_S = 2.0

# Helper processes the standard library starts once and keeps for the whole session.
_SESSION_HELPERS = ("multiprocessing.resource_tracker", "multiprocessing.forkserver")


def _live_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.is_alive()}


def _describe(thread: threading.Thread) -> str:
    target = getattr(thread, "_target", None)
    where = getattr(target, "__qualname__", None) or type(thread).__qualname__
    return f"{thread.name} ({'daemon, ' if thread.daemon else ''}{where})"


def _live_children() -> dict[int, psutil.Process]:
    alive = {}
    for child in psutil.Process().children(recursive=True):
        try:
            if child.status() == psutil.STATUS_ZOMBIE:
                continue
            if any(h in " ".join(child.cmdline()) for h in _SESSION_HELPERS):
                continue
        except psutil.NoSuchProcess:
            continue
        alive[child.pid] = child
    return alive


def _wait_for(leftovers, grace_s: float):
    deadline = time.monotonic() + grace_s
    left = leftovers()
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        left = leftovers()
    return left


@pytest.fixture(autouse=True)
def no_leaked_threads():
    """Fail a test that leaves a new thread running, daemon or not (after a 2 s grace)."""
    before = _live_threads()
    yield
    left = _wait_for(lambda: _live_threads() - before, LEAK_GRACE_S)
    if left:
        pytest.fail("the test left threads running: " + ", ".join(sorted(map(_describe, left))),
                    pytrace=False)


@pytest.fixture(autouse=True)
def no_leaked_processes():
    """Fail a test that leaves a new child process running (after a 2 s grace), then end it."""
    before = set(_live_children())
    yield
    left = _wait_for(lambda: {p: c for p, c in _live_children().items() if p not in before},
                     LEAK_GRACE_S)
    if left:
        names = []
        for child in left.values():
            try:
                names.append(f"{child.pid} {' '.join(child.cmdline())[:80]}")
                child.kill()  # so the next test starts clean
            except psutil.NoSuchProcess:
                pass
        pytest.fail("the test left child processes running: " + "; ".join(names),
                    pytrace=False)
