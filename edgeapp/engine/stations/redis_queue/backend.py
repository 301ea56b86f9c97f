"""The engine's Redis backend as one part: the hub, the frame gateway, the station channels.

The engine builds it when ``queue_backend: redis``: ``start`` reaches Redis (a wrong address
or password stops the engine's start with one clear line), binds the frame gateway
(``distributed.stations_bind``) and publishes its address; ``channel`` is the pool's channel
factory (a config station with ``remote: true``, or one that announced itself, is remote;
the others are spawned here); a station heard of for the first time is added to the pool
through ``add_station``.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable

import numpy as np

from edgeapp.config import Config, StationConfig
from edgeapp.engine.api import EngineEvent, Notification, Severity
from edgeapp.engine.stations.redis_queue.channel import RedisChannel
from edgeapp.engine.stations.redis_queue.codec import Heartbeat
from edgeapp.engine.stations.redis_queue.frames import FrameGateway
from edgeapp.engine.stations.redis_queue.hub import RedisHub
from edgeapp.engine.stations.redis_queue.station_link import LinkOptions
from edgeapp.engine.stations.redis_queue.target import RedisTarget
from edgeapp.engine.stations.settings import StationSettings
from edgeapp.errors import InputError

logger = logging.getLogger(__name__)

SubmitFrame = Callable[[str, int, np.ndarray, float], None]


class RedisBackend:
    """Hub + gateway + channel factory (see the module docstring)."""

    def __init__(self, config: Config, *, publish: Callable[[EngineEvent], None],
                 add_station: Callable[[StationConfig], None],
                 known_result: Callable[[str], bool]) -> None:
        self._config = config
        self._publish = publish
        self._add_station = add_station
        self._known_result = known_result
        self.target = RedisTarget.from_config(config.redis)
        self._options = LinkOptions.from_config(config.redis)
        self._remote = {s.name for s in config.stations if s.remote}
        self._lock = threading.Lock()
        self.hub = RedisHub(self.target, publish=publish, on_station=self._heard,
                            stream_maxlen=config.redis.stream_maxlen,
                            silent_after_s=config.redis.silent_after_s,
                            claim_idle_s=max(30.0, 3 * config.vlm.timeout_s))
        self.gateway: FrameGateway | None = None

    def start(self, submit_frame: SubmitFrame, keys_dir: object | None) -> None:
        """Reach Redis, bind the frame gateway, start serving."""
        self.hub.connect()
        d = self._config.distributed
        self.gateway = FrameGateway(d.stations_bind, submit_frame,
                                    keys_dir=keys_dir,  # type: ignore[arg-type]
                                    insecure=d.insecure)
        self.gateway.start()
        self.hub.start(advertised(self.gateway.address))

    def channel(self, settings: StationSettings) -> RedisChannel:
        """The pool's channel for a station (remote or spawned here)."""
        assert self.gateway is not None, "the Redis backend has not started"
        with self._lock:
            remote = settings.name in self._remote
        return RedisChannel(settings, self.hub, self.gateway, remote=remote,
                            known_result=self._known_result,
                            process_args=(self.target, self._options, os.getpid()))

    def stop(self) -> None:
        """Stop reading and writing (after the stations ended and the batcher answered)."""
        self.hub.stop()
        if self.gateway is not None:
            self.gateway.stop()

    def join(self, timeout: float = 5.0) -> bool:
        """Wait for the threads; True when they ended."""
        done = self.hub.join(timeout)
        if self.gateway is not None:
            done = self.gateway.join(timeout) and done
        return done

    def _heard(self, name: str, beat: Heartbeat) -> None:
        """A station speaks that the pool does not serve: add it as a remote station."""
        with self._lock:
            if name not in self._remote and name in {s.name for s in self._config.stations}:
                return  # one of ours, between its processes: the pool restarts it
            self._remote.add(name)
        try:
            self._add_station(StationConfig(name=name, source=beat.source, remote=True))
        except InputError:
            return  # already running (or starting) under that name
        self._publish(Notification(Severity.INFO, f"station {name} joined from {beat.host} "
                                                  f"(pid {beat.pid}): {beat.source}", name))


def advertised(address: str) -> str:
    """The frame address stations are told: a wildcard bind (``tcp://0.0.0.0:5557``,
    ``tcp://*:5557``) under this machine's host name, which other machines can resolve."""
    for wildcard in ("tcp://0.0.0.0:", "tcp://*:", "tcp://[::]:"):
        if address.startswith(wildcard):
            return f"tcp://{socket.gethostname()}:{address[len(wildcard):]}"
    return address
