"""The Prometheus endpoint: ``/metrics`` in the text exposition format, on its own registry.

Every scrape reads the engine's ``status()`` and the sampler at that moment (a custom
collector, not gauges set in the background), so what Prometheus sees is what ``status()``
says. A figure that is not measured (GPU on a machine without one, CPU before the second
reading) is left out of the scrape, never exported as 0. ``prometheus_client`` is imported
here only, when a server is asked for: the worker path never needs it.

Names follow the Prometheus conventions (``_total`` counters, base units in seconds and
bytes; the percentages keep the names the operators' dashboards know).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Protocol

from edgeapp.errors import TransportError

if TYPE_CHECKING:  # the CLI imports this module to build its parser: keep that light
    from edgeapp.engine.api import EngineStatus
    from edgeapp.engine.metrics.sampler import MetricsSampler

DEFAULT_BIND = "127.0.0.1"
THREAD_NAME = "engine-metrics-http"


class MetricsSource(Protocol):
    """What the exporter reads: the engine facade (``Engine``) fits."""

    def status(self) -> EngineStatus:
        """The engine's snapshot now."""
        ...

    @property
    def metrics(self) -> MetricsSampler:
        """The engine's metrics sampler."""
        ...


class EngineCollector:
    """A ``prometheus_client`` collector that reads the engine on every scrape."""

    def __init__(self, status: Callable[[], EngineStatus], sampler: MetricsSampler) -> None:
        self._status = status
        self._sampler = sampler

    def collect(self) -> Iterator[Any]:
        """The metric families of one scrape."""
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            HistogramMetricFamily,
        )

        from edgeapp.engine.api import StationState

        s = self._status()
        orders = CounterMetricFamily("edgeapp_orders", "Order verdicts by station and status.",
                                     labels=["station", "status"])
        for (station, status), n in sorted(self._sampler.orders.counts().items()):
            orders.add_metric([station, status], n)
        yield orders

        hist = self._sampler.orders.histogram()
        yield HistogramMetricFamily(
            "edgeapp_order_latency_seconds", "Order end to verdict, per order.",
            buckets=[("+Inf" if math.isinf(le) else repr(le), n) for le, n in hist.buckets],
            sum_value=hist.sum_s)

        frames = CounterMetricFamily("edgeapp_frames", "Frames per station: in (left the "
                                     "pacer), processed (detections back), dropped.",
                                     labels=["station", "kind"])
        for st in s.stations:
            frames.add_metric([st.name, "in"], st.frames_in)
            frames.add_metric([st.name, "processed"], st.frames_processed)
            frames.add_metric([st.name, "dropped"], st.frames_dropped)
        yield frames

        stations = GaugeMetricFamily("edgeapp_stations", "Stations by lifecycle state.",
                                     labels=["state"])
        for state in StationState:
            stations.add_metric([state.value], sum(st.state is state for st in s.stations))
        yield stations

        slo_state = GaugeMetricFamily("edgeapp_slo_state", "SLO state: 0 ok, 1 warning "
                                      "(within 20 % of its limit), 2 critical.", labels=["slo"])
        slo_value = GaugeMetricFamily("edgeapp_slo_value", "The value each SLO judges "
                                      "(where measured).", labels=["slo"])
        slo_limit = GaugeMetricFamily("edgeapp_slo_limit", "Each SLO's limit.", labels=["slo"])
        for slo in s.slos:
            slo_state.add_metric([slo.name.value], int(slo.state))
            if slo.value is not None:
                slo_value.add_metric([slo.name.value], slo.value)
            if slo.limit is not None:
                slo_limit.add_metric([slo.name.value], slo.limit)
        yield from (slo_state, slo_value, slo_limit)

        p = s.parameters
        params = GaugeMetricFamily("edgeapp_stream_parameter", "Stream parameters in force: "
                                   "fps and resolution as fractions of each camera's own, "
                                   "grade 0 low / 1 medium / 2 high, and the level indices.",
                                   labels=["name"])
        for name, value in (("fps", p.fps), ("resolution", p.resolution),
                            ("grade", int(p.grade)), ("fps_level", p.fps_level),
                            ("resolution_level", p.resolution_level)):
            params.add_metric([name], value)
        yield params

        q = s.queues
        depth = GaugeMetricFamily("edgeapp_queue_depth", "Items waiting or in flight.",
                                  labels=["queue"])
        for name, value in (("tasks", q.tasks), ("tasks_leased", q.tasks_leased),
                            ("vlm", q.vlm_queue), ("vlm_in_flight", q.vlm_in_flight)):
            depth.add_metric([name], value)
        yield depth
        yield CounterMetricFamily("edgeapp_tasks_dropped", "Frames dropped because the task "
                                  "queue was full.", value=q.tasks_dropped)
        yield CounterMetricFamily("edgeapp_events_dropped", "Engine events the event bus "
                                  "dropped (a subscriber too slow).", value=q.events_dropped)
        yield from _system_families(s, self._sampler, GaugeMetricFamily)

    def describe(self) -> list[Any]:
        """Nothing up front: registering must not read the engine."""
        return []


def _system_families(s: EngineStatus, sampler: MetricsSampler, gauge: Any) -> Iterator[Any]:
    """Machine and process load; each only when measured."""
    for name, value, text in (
            ("edgeapp_cpu_percent", s.system.cpu_percent, "Machine CPU use, all cores."),
            ("edgeapp_memory_percent", s.system.memory_percent, "Machine memory in use."),
            ("edgeapp_gpu_percent", s.system.gpu_percent, "GPU use (busiest device or engine)."),
            ("edgeapp_gpu_memory_percent", s.system.gpu_memory_percent, "GPU memory in use.")):
        if value is not None:
            yield gauge(name, text, value=value)
    usage = sampler.processes()
    cpu = gauge("edgeapp_process_cpu_percent", "CPU use per process, in percent of one core.",
                labels=["process", "pid"])
    rss = gauge("edgeapp_process_resident_memory_bytes", "Resident memory per process.",
                labels=["process", "pid"])
    for name, u in sorted(usage.items()):
        if u.cpu_percent is not None:
            cpu.add_metric([name, str(u.pid)], u.cpu_percent)
        rss.add_metric([name, str(u.pid)], u.rss_mb * 2**20)
    yield from (cpu, rss)
    if s.uptime_s is not None:
        yield gauge("edgeapp_uptime_seconds", "Seconds since the engine started.",
                    value=s.uptime_s)


class MetricsServer:
    """An HTTP server for ``/metrics`` on its own thread; start/stop/join."""

    def __init__(self, collector: EngineCollector, port: int, bind: str = DEFAULT_BIND) -> None:
        from prometheus_client import CollectorRegistry

        self.registry = CollectorRegistry()  # its own: nothing of the process-wide default
        self.registry.register(collector)
        self.bind = bind
        self._port = port
        self._httpd: Any = None
        self._thread: Any = None

    def start(self) -> None:
        """Bind and serve; ``TransportError`` when the address cannot be bound."""
        from prometheus_client import start_http_server

        try:
            self._httpd, self._thread = start_http_server(self._port, addr=self.bind,
                                                          registry=self.registry)
        except OSError as exc:
            raise TransportError(
                f"cannot serve metrics on {self.bind}:{self._port}: "
                f"{exc.strerror or exc}; choose another --metrics-port or --metrics-bind"
            ) from exc
        self._thread.name = THREAD_NAME

    @property
    def port(self) -> int:
        """The port served (the one picked when 0 was asked for)."""
        return int(self._httpd.server_port) if self._httpd is not None else self._port

    @property
    def url(self) -> str:
        """Where to scrape."""
        host = f"[{self.bind}]" if ":" in self.bind else self.bind
        return f"http://{host}:{self.port}/metrics"

    def stop(self) -> None:
        """Stop serving and close the socket (returns within half a second)."""
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the server thread; True when it has ended."""
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True


def start_metrics_server(engine: MetricsSource, port: int,
                         bind: str = DEFAULT_BIND) -> MetricsServer:
    """Serve ``engine``'s metrics on ``http://bind:port/metrics`` (port 0: any free port);
    the caller stops it (``stop()``, ``join()``) before or after the engine."""
    if not 0 <= port <= 65535:
        from edgeapp.errors import UsageError

        raise UsageError(f"--metrics-port must be 0-65535, got {port}")
    from edgeapp.extras import require

    require("prometheus_client", "app")  # a missing extra is one line, not a traceback
    server = MetricsServer(EngineCollector(engine.status, engine.metrics), port, bind)
    server.start()
    return server
