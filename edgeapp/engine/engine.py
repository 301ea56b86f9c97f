"""The Engine: wires stations, Producer/Collector, local workers, VLM batcher and results store.

One plain-Python facade, thread-safe, no Qt (DESIGN §4). The GUI, ``edgeapp --headless`` and
the tests are its clients: ``start()`` / ``stop(timeout)`` / ``join()``, ``status()``,
``summary()``, ``subscribe(callback)``, ``latest_frame(station)`` and the control calls
``set_override`` / ``clear_override`` / ``set_controller`` / ``add_station`` /
``remove_station``, which return at once: what can be checked at once raises ``InputError``,
the rest is done on the part's own thread and its outcome arrives as an event. The stream
parameters are set by the controller (:mod:`edgeapp.engine.control`, on the ``engine-control``
thread) or, while an override holds, by the operator; the stations are run by the pool
(:mod:`edgeapp.engine.stations.pool`, on the ``engine-stations`` thread).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import threading
import time
from typing import TYPE_CHECKING, Any

from edgeapp.config import Config, StationConfig
from edgeapp.engine import readings
from edgeapp.engine.api import (
    EngineStatus,
    LatestFrame,
    MetricsPoint,
    Notification,
    OrderValidated,
    ScalingDecision,
    Severity,
    StreamParameters,
)
from edgeapp.engine.control.loop import ControlLoop
from edgeapp.engine.control.parameters import ParameterSpace
from edgeapp.engine.control.slo import MetricsSample
from edgeapp.engine.distributed.collector import Collector
from edgeapp.engine.distributed.local_workers import LocalWorkers, sizing_args
from edgeapp.engine.distributed.producer import Producer
from edgeapp.engine.distributed.settings import CollectorSettings
from edgeapp.engine.engine_setup import (
    input_size_for,
    make_producer_settings,
    model_grades,
    ticket_class_of,
    worker_keys,
)
from edgeapp.engine.events import EventBus, Subscriber
from edgeapp.engine.metrics.sampler import MetricsSampler
from edgeapp.engine.orders.catalog import load_catalog
from edgeapp.engine.orders.result import OrderResult
from edgeapp.engine.orders.store import ResultsStore, default_results_path
from edgeapp.engine.snapshot import (
    WorkerRates,
    control_status,
    parameters_status,
    queue_status,
    slo_statuses,
    station_status,
    worker_statuses,
)
from edgeapp.engine.stations import messages as m
from edgeapp.engine.stations.autoscaler import Autoscaler, ScalingMetrics
from edgeapp.engine.stations.pool import StationPool
from edgeapp.engine.stations.router import StationRouter
from edgeapp.engine.stations.settings import StationSettings
from edgeapp.engine.stations.supervisor import RestartPolicy, WorkerSupervisor
from edgeapp.engine.tally import RunTally
from edgeapp.engine.vision.grades import Grade
from edgeapp.engine.vlm.backend import Backend
from edgeapp.engine.vlm.batcher import VlmBatcher
from edgeapp.errors import EdgeAppError
from edgeapp.paths import logs_dir

if TYPE_CHECKING:
    from edgeapp.engine.stations.redis_queue.backend import RedisBackend

logger = logging.getLogger(__name__)

_MONITOR_S = 0.5
# How long stop() waits for a controller that is still being built (see stop, step 10).
_CONTROL_BUILD_WAIT_S = 120.0


class Engine:
    """The running order-accuracy pipeline for one config."""

    def __init__(self, config: Config, *, backend: Backend | None = None) -> None:
        self.config = config
        self.catalog = load_catalog(config.orders_path, config.inventory_path)
        self._backend_given = backend
        self._bus = EventBus()
        self._lock = threading.Lock()
        self._control = ControlLoop(config.slo, config.stream, config.controller,
                                    grades=model_grades(config),
                                    sample=self._metrics_sample, apply=self._apply,
                                    publish=self._bus.publish,
                                    after_step=lambda: self._autoscaler.tick())
        self._space = self._control.elasticity.space
        self._applied = self._control.elasticity.parameters
        self._ticket_class = ticket_class_of(config, self.catalog)
        self._store: ResultsStore | None = None
        self._backend: Backend | None = None
        self._batcher: VlmBatcher | None = None
        self._collector: Collector | None = None
        self._producer: Producer | None = None
        self._workers: LocalWorkers | None = None
        self._router = StationRouter(
            lookup=lambda name: self._pool.get(name), records=lambda: self._pool.records(),
            on_result=self._on_result, publish=self._bus.publish,
            expected=self.catalog.expected, vlm_timeout_s=config.vlm.timeout_s,
            input_size=functools.partial(input_size_for, config))
        sv = config.supervision
        self._policy = RestartPolicy(backoff_max_s=sv.restart_backoff_max_s,
                                     max_crashes=sv.max_crashes, window_s=sv.crash_window_s)
        # queue_backend: redis — stations (here or on other machines) talk through Redis.
        self._redis: RedisBackend | None = None
        channels: dict[str, Any] = {}
        if config.queue_backend == "redis":
            from edgeapp.engine.stations.redis_queue.backend import RedisBackend

            self._redis = RedisBackend(config, publish=self._bus.publish, add_station=self._add,
                                       known_result=self._stored)
            channels["channel"] = self._redis.channel
        self._pool = StationPool(settings_for=self._station_settings, router=self._router,
                                 publish=self._bus.publish, policy=self._policy,
                                 drain_s=sv.drain_timeout_s, **channels)
        self._autoscaler = Autoscaler(
            config.scaling, config.stations, active=self._pool.active, add=self._add,
            remove=self._pool.remove, metrics=self._scaling_metrics,
            scale_down_blocked=self._scale_down_blocked, publish=self._bus.publish,
            store=self._store_decision)
        self._monitor = threading.Thread(target=self._watch, name="engine-monitor", daemon=True)
        self._stopping = threading.Event()
        self._stopped = threading.Event()
        self._started_at: float | None = None
        self._stopped_at: float | None = None
        # Machine, processes, GPU and the history (edgeapp.engine.metrics.sampler).
        self._metrics = MetricsSampler(
            status=self.status, processes=self._process_pids,
            on_error=lambda text: self._publish(Notification(Severity.WARNING, text,
                                                             "metrics")))
        self._tally = RunTally()
        self._worker_rates = WorkerRates()
        self._station_names: set[str] = set()  # every station that ran, added ones too
        self._reported_errors: set[int] = set()

    # ── lifecycle ────────────────────────────────────────────────────────────────────────

    def start(self) -> None:
        """Start every part, the stations last (they need all the others); raises on failure
        after stopping what had started."""
        c = self.config
        try:
            self._bus.start()
            self._store = ResultsStore(default_results_path(c.data_dir))
            if self._backend_given is not None:
                self._backend = self._backend_given
            else:
                from edgeapp.engine.vlm.factory import make_backend

                self._backend = make_backend(c, self.catalog)
            self._batcher = VlmBatcher(
                self._backend, batch_window_ms=c.vlm.batch_window_ms,
                max_batch_size=c.vlm.max_batch_size, max_in_flight=c.vlm.max_in_flight,
                default_timeout_s=c.vlm.timeout_s, publish=self._bus.publish)
            self._batcher.start()
            keys = worker_keys(c)
            self._collector = Collector(CollectorSettings(
                address=c.distributed.collector_bind, keys_dir=keys and keys[0],
                insecure=c.distributed.insecure))
            self._collector.subscribe(self._router.deliver)
            self._collector.subscribe(self._tally.add_frame)
            self._collector.start()
            self._producer = Producer(make_producer_settings(c, keys and keys[0],
                                                             self._applied.grade),
                                      on_event=self._bus.publish)
            self._producer.attach_collector(self._collector)
            self._producer.start()
            assert self._producer.address is not None
            self._workers = LocalWorkers(
                c.distributed.local_workers, self._producer.address,
                collector_address=self._collector.address, keys_dir=keys and keys[1],
                log_dir=logs_dir(c.data_dir), extra_args=sizing_args(c.distributed.local_workers))
            self._workers.start()
            self._started_at = time.monotonic()
            self._router.attach(self._producer, self._batcher)
            self._router.set_parameters(self._space.resolution_scale(self._applied),
                                        self._applied.grade)
            if self._redis is not None:  # Redis reached (or a clear error) before any station
                self._redis.start(self._router.submit_frame, keys and keys[0])
            self._pool.start(WorkerSupervisor(self._workers, self._policy, self._bus.publish))
            self._autoscaler.remember(
                [ScalingDecision.from_dict(d) for d in self._store.scaling_history()])
            for station in self._autoscaler.initial():
                self._add(station)
            self._monitor.start()
            self._metrics.start()
            self._control.start()
        except BaseException:
            self.stop(timeout=10.0, finish_orders=False)
            raise

    def stop(self, timeout: float = 30.0, finish_orders: bool = True) -> None:
        """Stop everything within about ``timeout`` s; ``finish_orders`` lets every station
        end the order on its counter first. Safe to call twice and after a failed start."""
        if self._stopping.is_set():
            self._stopped.wait(timeout)
            return
        self._stopping.set()
        t_end = time.monotonic() + timeout
        # The shutdown order, and why:
        # 1. the monitor and the controller: the load of a shutdown is not a load to learn
        #    from; the metrics sampler: nor one to plot.
        self._control.stop()
        self._metrics.stop()
        if self._monitor.ident is not None:
            self._monitor.join(2.0)
        self._metrics.join(2.0)
        self._control.join(5.0)
        # 2. the stations, first: finishing an order needs the Producer, the workers, the
        #    Collector and the batcher, so all of those stay up until every station ended.
        self._pool.stop_stations(finish_orders, max(1.0, t_end - time.monotonic() - 8.0))
        # 3. the pool thread: every station has ended, so every result has been stored; no
        #    local worker is restarted from here on.
        self._pool.stop()
        self._pool.join(5.0)
        self._stopped_at = time.monotonic()
        # 4. the batcher: nobody can ask it any more (a pending request is answered "stopped").
        if self._batcher is not None:
            self._batcher.stop()
            self._batcher.join(5.0)
        # 5. the backend, only after the batcher joined (its contract): no call is running.
        if self._backend is not None:
            self._backend.close()
        # 5b. Redis: the batcher's last answers are written, then its reader, its writer and
        #     the frame gateway end (stations on other machines keep what they report).
        if self._redis is not None:
            self._redis.stop()
            self._redis.join(5.0)
        # 6. the Producer: END to every worker that asks, bounded; then the local workers,
        #    which are leaving on that END already (SIGTERM, then SIGKILL, for the rest).
        if self._producer is not None:
            self._producer.stop()
            self._producer.join(5.0)
        if self._workers is not None:
            self._workers.stop(timeout=max(2.0, min(10.0, t_end - time.monotonic())))
        # 7. the Collector: no worker is left to push to it.
        if self._collector is not None:
            self._collector.stop()
            self._collector.join(5.0)
        # 8. the store: the last result was written in step 3.
        if self._store is not None:
            self._store.close()
        # 9. the event bus, last: the notifications of the steps above still reach clients.
        self._bus.stop()
        self._bus.join(5.0)
        # 10. the control thread once more, if it is still building the AIF agent (JAX
        #     compiles for many seconds on a starved machine and cannot be cut short): a
        #     process that exits meanwhile aborts inside XLA ("exception not rethrown").
        if not self._control.join(_CONTROL_BUILD_WAIT_S):
            logger.warning("the controller was still starting %.0f s after stop",
                           _CONTROL_BUILD_WAIT_S)
        self._stopped.set()

    def hurry(self) -> None:
        """Cut a running ``stop()`` short: stations stop without finishing their orders
        (those end ``failed``). Only sets a flag, so a signal handler may call it."""
        self._pool.hurry()

    def join(self, timeout: float | None = None) -> bool:
        """Wait until the engine has stopped; True when it has."""
        return self._stopped.wait(timeout)

    @property
    def running(self) -> bool:
        """True between a successful ``start()`` and ``stop()``."""
        return self._started_at is not None and not self._stopping.is_set()

    # ── clients ──────────────────────────────────────────────────────────────────────────

    def subscribe(self, callback: Subscriber) -> Any:
        """Call ``callback(event)`` for every engine event (on the event thread); returns
        an unsubscribe function."""
        return self._bus.subscribe(callback)

    def latest_frame(self, station: str, unless_seq: int | None = None) -> LatestFrame | None:
        """The newest frame of ``station`` (a copy, from shared memory) with detections;
        None also when its ``seq`` is ``unless_seq``, the frame the caller has already (so a
        display's poll copies nothing)."""
        return self._router.latest_frame(station, unless_seq)

    @property
    def space(self) -> ParameterSpace:
        """The levels the parameters move in: the config's FPS and resolution levels and the
        grades with a model of their own (what the window's sliders offer)."""
        return self._space

    @property
    def parameters(self) -> StreamParameters:
        """The stream parameters in force, as levels (see ``status().parameters``)."""
        return self._control.elasticity.parameters

    def set_override(self, *, fps: int | None = None, resolution: int | None = None,
                     grade: Grade | str | int | None = None) -> None:
        """The operator pins parameters; they hold until ``clear_override`` (the controller
        still moves the ones left out). Returns at once; the change is a
        ``ParametersChanged`` event.

        ``fps`` and ``resolution`` are level indices into ``stream.fps_levels`` /
        ``stream.resolution_levels`` (0 = the camera's own rate and size); ``grade`` is
        ``low`` / ``medium`` / ``high`` (or 0-2). An out-of-range level is an ``InputError``.
        """
        self._control.set_override(fps_level=fps, resolution_level=resolution, grade=grade)

    def clear_override(self) -> None:
        """Release the operator's pins (a ``Notification`` says so); the controller goes on
        from the parameters in force."""
        self._control.clear_override()

    def set_controller(self, kind: str) -> None:
        """Let the ``aif``, ``heuristic`` or ``static`` controller set the parameters.
        Returns at once (an unknown kind is an ``InputError``); a ``Notification`` says when
        it decides (the first AIF build takes seconds, the controller in force goes on
        meanwhile). A controller used before comes back with what it learnt."""
        self._control.set_controller(kind)

    def add_station(self, station: StationConfig) -> None:
        """Start one more station at the parameters in force. Returns at once (a name in use
        is an ``InputError``); ``StationStateChanged`` events tell how it starts."""
        self._check_running()
        self._add(station)

    def remove_station(self, name: str) -> None:
        """Drain station ``name``: it finishes the order on its counter (within
        ``supervision.drain_timeout_s``), then stops. Returns at once (an unknown name is an
        ``InputError``); ``StationStateChanged`` events tell the rest."""
        self._check_running()
        self._pool.remove(name)

    def set_autoscaling(self, on: bool, min_stations: int | None = None,
                        max_stations: int | None = None) -> None:
        """Autoscaling on or off, with new bounds (None: keep). Returns at once (bad bounds
        are an ``InputError``); a ``Notification`` says when it holds, and every decision
        after is a ``ScalingDecision``."""
        self._check_running()
        bounds = self._autoscaler.check_settings(min_stations, max_stations)
        self._control.call(lambda: self._autoscaler.apply_settings(on, bounds))

    def scaling_history(self, since: float | None = None) -> list[ScalingDecision]:
        """The autoscaler's decisions, oldest first (this run's and, from the results store,
        the runs before); ``since``: only those after that wall-clock time."""
        return self._autoscaler.history(since)

    def _check_running(self) -> None:
        if not self.running:
            raise EdgeAppError("the engine is not running")

    # ── status ───────────────────────────────────────────────────────────────────────────

    def status(self) -> EngineStatus:
        """A typed snapshot of stations, workers, SLOs, parameters, queues and load
        (``to_dict()`` gives plain data); what cannot be measured is None."""
        stations = tuple(station_status(r, time.time()) for r in self._pool.records())
        producer = self._producer.status() if self._producer is not None else {}
        o50, o95 = self._tally.order_latency.percentiles(50, 95)
        _, f95 = self._tally.frame_latency.percentiles(50, 95)
        running = [s.fps_out for s in stations if s.fps_out is not None]
        return EngineStatus(
            running=self.running,
            uptime_s=None if self._started_at is None else time.monotonic() - self._started_at,
            stations=stations,
            workers=worker_statuses(producer, self._producer, self._workers,
                                    self._worker_rates),
            slos=slo_statuses(self._control),
            parameters=parameters_status(self._control, self._space),
            control=control_status(self._control, self._autoscaler),
            queues=queue_status(producer, self._batcher, self._bus.dropped),
            system=self._metrics.system(),
            fps=sum(running) if running else None,
            order_latency_p50_s=o50, order_latency_p95_s=o95, frame_latency_p95_s=f95,
            orders=dict(self._tally.by_status))

    @property
    def metrics(self) -> MetricsSampler:
        """The metrics sampler: ``system()``, ``processes()`` (engine, stations, local
        workers), ``orders`` (per-order counts and latencies); what the exporter reads."""
        return self._metrics

    def metrics_history(self, since: float | None = None) -> list[MetricsPoint]:
        """The metrics history (one point a second, the last 30 minutes), oldest first:
        the points newer than ``since`` (wall-clock seconds, ``time.time()``), or all."""
        return self._metrics.history_since(since)

    def summary(self) -> dict[str, Any]:
        """The run so far: orders by status, verdict accuracy against the synthetic camera's
        truth, per-order latency percentiles (order end → verdict), frames per second, and
        how many stations ran (those added while running included)."""
        end = self._stopped_at or time.monotonic()
        truth = [r.truth_orders for r in self._pool.records() if r.truth_orders is not None]
        return {
            **self._tally.summary(end),
            "duration_s": None if self._started_at is None else end - self._started_at,
            "camera_orders": sum(truth) if truth else None,
            "stations": len(self._station_names),
            "parameters": dataclasses.asdict(self.parameters) | {
                "grade": self.parameters.grade.name.lower()},
            "controller": self._control.kind,
        }

    # ── wiring callbacks (pipeline threads) ──────────────────────────────────────────────

    def _add(self, station: StationConfig) -> None:
        self._pool.add(station)
        self._station_names.add(station.name)

    def _process_pids(self) -> dict[str, int]:
        """The processes the sampler watches: this one, each local station's, each local
        worker's (by the name the worker registers with)."""
        pids = {"engine": os.getpid()}
        for record in self._pool.records():
            pid = record.channel.pid if record.channel is not None else None
            if pid is not None:
                pids[record.name] = pid
        if self._workers is not None:
            prefix = self._workers.name_prefix
            pids.update({f"{prefix}-{i}": pid for i, pid in self._workers.pids().items()})
        return pids

    def _stored(self, result_id: str) -> bool:
        """Whether the results store has ``result_id`` (a verdict that came twice)."""
        store = self._store
        return store is not None and store.get(result_id) is not None

    def _station_settings(self, station: StationConfig) -> StationSettings:
        params = self._applied
        return StationSettings.from_config(self.config, station, ticket_class=self._ticket_class,
                                           fps_level=self._space.fps_fraction(params),
                                           scale=self._space.resolution_scale(params))

    def _apply(self, new: StreamParameters) -> None:
        """Send new parameters to the pacers (FPS, resolution), the router (the detector input
        size) and the workers (grade). Control thread; never blocks on a station."""
        with self._lock:
            old, self._applied = self._applied, new
        scale = self._space.resolution_scale(new)
        if (scale, new.grade) != (self._space.resolution_scale(old), old.grade):
            self._router.set_parameters(scale, new.grade)
        if (new.fps_level, new.resolution_level) != (old.fps_level, old.resolution_level):
            self._pool.set_parameters(m.SetParameters(self._space.fps_fraction(new), scale))
        if new.grade != old.grade and self._producer is not None:
            self._producer.set_grade(int(new.grade))

    def _metrics_sample(self) -> MetricsSample:
        """What the SLOs judge, over the control interval just ended (control thread)."""
        producer = self._producer.status() if self._producer is not None else {}
        return readings.control_sample(self._tally, producer, self._pool.records(),
                                       self._metrics,
                                       vlm_shares_cpu=self.config.vlm.backend == "local")

    def _scaling_metrics(self) -> ScalingMetrics:
        return readings.scaling_metrics(self._metrics)

    def _scale_down_blocked(self, now: float) -> str | None:
        return readings.scale_down_blocked(self._control, self.config.scaling.hysteresis_window,
                                           now)

    def _store_decision(self, decision: ScalingDecision) -> None:
        if self._store is not None:
            self._store.add_scaling(decision.to_dict())

    def _on_result(self, result: OrderResult) -> None:
        try:
            if self._store is not None:
                self._store.add(result)
        except EdgeAppError as exc:
            self._bus.publish(Notification(Severity.ERROR, f"result of order {result.order_id} "
                                                           f"not stored: {exc}", "store"))
        self._tally.add_result(result)
        self._metrics.orders.add(result)
        self._bus.publish(OrderValidated(result))

    def _watch(self) -> None:
        """Engine-monitor thread: failed socket threads, worker rates."""
        while not self._stopping.wait(_MONITOR_S):
            try:
                if self._producer is not None:
                    self._worker_rates.update(self._producer.status()["workers"])
                for part in (self._producer, self._collector):
                    error = getattr(part, "error", None)
                    if error is not None and id(part) not in self._reported_errors:
                        self._reported_errors.add(id(part))
                        self._bus.publish(Notification(
                            Severity.ERROR, f"{type(part).__name__} failed: {error!r}",
                            type(part).__name__.lower()))
            except Exception as exc:  # the monitor itself must keep watching
                logger.exception("engine monitor failed")
                self._bus.publish(Notification(Severity.ERROR, f"engine monitor: {exc!r}"))
