"""A station on the Redis backend: a process the engine spawns, or ``edgeapp --station``.

Both run :func:`run_station`: the unchanged :class:`~edgeapp.engine.stations.station.Station`
on a :class:`~.station_link.RedisStationConn`. The first SIGTERM stops it gracefully (the
order on its counter ends ``failed: station stopped``), a second one ends it at once; the
goodbye it sends at the end tells the engine how it ended.
"""

from __future__ import annotations

import signal
import threading
from typing import Any

from edgeapp.engine.stations.messages import StationNotice
from edgeapp.engine.stations.process import sigterm_handler
from edgeapp.engine.stations.redis_queue.station_link import LinkOptions, RedisStationConn
from edgeapp.engine.stations.redis_queue.target import RedisTarget
from edgeapp.engine.stations.settings import StationSettings


def station_process_main(settings: StationSettings, target: RedisTarget, options: LinkOptions,
                         parent_pid: int) -> None:
    """A local station process of the Redis backend (its output goes to its log file)."""
    from edgeapp.engine.stations.process import _log_to_file

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C belongs to the engine
    problem = _log_to_file(settings)
    raise SystemExit(run_station(settings, target, options, parent_pid=parent_pid,
                                 notice=problem))


def run_station(settings: StationSettings, target: RedisTarget, options: LinkOptions, *,
                parent_pid: int | None = None, keys: Any = None,
                notice: str | None = None, stop: threading.Event | None = None,
                frames_address: str | None = None) -> int:
    """Run one station until it is stopped (by the engine, SIGTERM or ``stop``); its exit
    code (0: stopped as asked)."""
    from edgeapp.engine.stations.station import Station

    conn = RedisStationConn(settings.name, target, source=settings.source,
                            data_dir=settings.data_dir, options=options, keys=keys,
                            parent_pid=parent_pid, frames_address=frames_address)
    conn.start()
    station = Station(settings, conn)  # type: ignore[arg-type]  # a pipe end in shape
    if notice:
        station.send(StationNotice("warning", notice, settings.name))
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, sigterm_handler(station))
    watcher = None
    if stop is not None:
        def watch() -> None:
            stop.wait()
            station.stop()

        watcher = threading.Thread(target=watch, name="station-stop-watch", daemon=True)
        watcher.start()
    code, reason = 0, "stopped"
    try:
        station.run()
    except BaseException as exc:
        code, reason = 1, f"crashed: {exc!r}"
        station.send(StationNotice("error", f"station {settings.name} crashed: {exc!r}",
                                   settings.name))
        raise
    finally:
        conn.close(code, reason)
        if stop is not None and watcher is not None:
            stop.set()
            watcher.join(1.0)
    return code
