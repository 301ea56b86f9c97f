"""The typed config: frozen dataclasses whose defaults ARE the built-in demo.

Each field carries a one-line ``doc`` (written as a comment into the default YAML) and its
rules (``ge``/``gt``/``le``/``lt`` for numbers and list items, ``kind`` for strings with a
format, ``fallback`` for paths where null means a derived default). The loader reads the same
metadata, so the rules, the error messages and the commented default cannot drift apart.
Build a Config with ``load_config`` / ``config_from_dict``: constructing one directly skips
validation.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from edgeapp import paths

# A path fallback gets the top-level values resolved so far (``data_dir`` comes before the
# sections) and returns what null means.
Fallback = Callable[[Mapping[str, Any]], Path]


def setting(default: Any, doc: str, **rules: Any) -> Any:
    """A config field: its default, its one-line doc and its validation rules."""
    return field(default=default, metadata={"doc": doc, **rules})


def listing(factory: Callable[[], Any], doc: str, **rules: Any) -> Any:
    """A list-valued config field (stored as a tuple) built by ``factory``."""
    return field(default_factory=factory, metadata={"doc": doc, **rules})


def path_setting(fallback: Fallback, doc: str, *, must_exist: bool = False) -> Any:
    """A path field: null means ``fallback(...)``; relative paths follow the config file."""
    return field(
        default_factory=lambda: fallback({}),
        metadata={"doc": doc, "fallback": fallback, "must_exist": must_exist},
    )


def section(cls: type) -> Any:
    """A nested section with all its defaults."""
    return field(default_factory=cls, metadata={"doc": (cls.__doc__ or "").strip()})


@dataclass(frozen=True)
class StationConfig:
    """One camera station."""

    name: str = field(metadata={"doc": "unique station name, shown in the window and in results"})
    source: str = setting(
        "synthetic", "what the camera is",
        kind="source")
    loop: bool = setting(False, "replay a video file from the start when it ends")
    fps: float = setting(15.0, "frames per second of the synthetic camera / asked of the source",
                         gt=0, le=240)
    width: int = setting(1280, "synthetic camera image width in pixels", ge=64, le=7680)
    height: int = setting(720, "synthetic camera image height in pixels", ge=64, le=4320)
    seed: int = setting(0, "synthetic scene random seed (default: the station's index)", ge=0)
    wrong_order_rate: float = setting(
        0.2, "share of synthetic orders packed wrong (missing / extra / wrong count)",
        ge=0, le=1)
    remote: bool = setting(
        False, "runs on another machine (edgeapp --station NAME; needs queue_backend: redis): "
        "the engine waits for it instead of starting it")


def _default_stations() -> tuple[StationConfig, ...]:
    return tuple(StationConfig(name=f"station-{i + 1}", seed=i) for i in range(4))


@dataclass(frozen=True)
class StreamConfig:
    """Stream parameter levels the controller steps through."""

    fps_levels: tuple[float, ...] = listing(
        lambda: (1.0, 0.66, 0.5, 0.33),
        "FPS levels as fractions of the source FPS, highest first", gt=0, le=1, descending=True)
    resolution_levels: tuple[float, ...] = listing(
        lambda: (1.0, 0.75, 0.5),
        "resolution levels as scale factors of the source size, highest first",
        gt=0, le=1, descending=True)
    start_fps_level: float = setting(
        0.33, "FPS level the streams start at, as a fraction of the source FPS (normally one "
        "of fps_levels); the demo's 4 cameras at full 15 FPS overload a 2-core machine",
        gt=0, le=1)
    grade: Literal["low", "medium", "high"] = setting(
        "low", "starting model grade (YOLO11 n / s / m); the controller raises it when there "
        "is room (the demo's 4 cameras at MEDIUM overload a 2-core machine from the start)")


@dataclass(frozen=True)
class ModelsConfig:
    """The YOLO11 detector models."""

    path: Path = path_setting(
        lambda _: paths.shipped_models_dir(),
        "model folder or OpenVINO .xml; null = the shipped models", must_exist=True)
    device: str = setting("CPU", "OpenVINO device: CPU, GPU, NPU, AUTO, …")
    loading_mode: Literal["lazy", "eager"] = setting(
        "lazy", "lazy: load a grade when first used; eager: load all grades at start")
    conf_threshold: float = setting(0.25, "minimum detection score", gt=0, lt=1)
    iou_threshold: float = setting(0.45, "overlap above which NMS drops a box", gt=0, le=1)


@dataclass(frozen=True)
class DistributedConfig:
    """Producer, Collector and inference workers (ZeroMQ)."""

    producer_bind: str = setting(
        "tcp://127.0.0.1:5555", "where workers fetch tasks (ZeroMQ endpoint)", kind="endpoint")
    collector_bind: str = setting(
        "tcp://127.0.0.1:5556", "where workers push detections (ZeroMQ endpoint)",
        kind="endpoint")
    local_workers: int = setting(2, "inference worker processes started on this machine",
                                 ge=0, le=64)
    batch_size: int = setting(4, "most tasks handed to a worker per request", ge=1, le=256)
    queue_size: int = setting(64, "task queue limit; the oldest frames are dropped beyond it",
                              ge=1, le=100_000)
    lease_s: float = setting(5.0, "seconds a worker has for a task before it is handed out again",
                             gt=0, le=600)
    keys_dir: Path = path_setting(
        lambda root: paths.default_keys_dir(root.get("data_dir") or paths.user_data_dir()),
        "CURVE key folder; null = <data_dir>/keys")
    insecure: bool = setting(
        False, "allow binding a non-loopback address without CURVE keys")
    stations_bind: str = setting(
        "tcp://127.0.0.1:5557", "where stations send frames and get detections back "
        "(queue_backend: redis; ZeroMQ endpoint)", kind="endpoint")


@dataclass(frozen=True)
class VlmConfig:
    """The vision-language model that lists the items in the bag."""

    backend: Literal["local", "openai"] = setting(
        "local", "local: the batched OpenVINO detector; openai: an OpenAI-compatible server")
    url: str = setting("http://localhost:8000", "VLM server base URL (openai backend)",
                       kind="http_url")
    api_path: str = setting("/v3/chat/completions",
                            "chat completions path (OVMS: /v3/…, most others: /v1/…)",
                            kind="url_path")
    model_name: str = setting("vlm", "model name sent to the server")
    batch_window_ms: int = setting(50, "how long the batcher waits to fill a batch", ge=0)
    max_batch_size: int = setting(16, "most requests in one batch", ge=1, le=1024)
    max_in_flight: int = setting(4, "most batches waiting on the backend at once", ge=1, le=256)
    timeout_s: float = setting(10.0, "deadline of one VLM call", gt=0, le=600)
    top_k_frames: int = setting(2, "frames of an order sent to the VLM", ge=1, le=32)
    # medium: on the 2-core demo machine the m model judged worse and 3x slower than s
    # (README, "The demo end to end").
    grade: Literal["low", "medium", "high"] = setting(
        "medium", "model grade of the local backend; a grade not installed uses the nearest one")
    confirm_grade: Literal["none", "low", "medium", "high"] = setting(
        "high", "local backend: when its count disagrees with the order's ticket, the frames "
        "are counted again by this grade's model and that count stands (none: never; only a "
        "model above vlm.grade takes the second look)")


@dataclass(frozen=True)
class OrdersConfig:
    """The order tracker."""

    clear_seconds: float = setting(1.0, "seconds the counter must stay clear to end an order",
                                   gt=0, le=600)
    pre_buffer_frames: int = setting(8, "frames kept from before an order starts", ge=0,
                                     le=1000)
    camera_hold_s: float = setting(
        10.0, "seconds an open order waits for its camera to come back with the same order "
        "on the counter; past that it ends failed: camera offline", gt=0, le=3600)


@dataclass(frozen=True)
class SloConfig:
    """Service-level objectives the controller keeps."""

    memory_percent: float = setting(90.0, "memory use limit in percent", gt=0, le=100)
    # 1 s: at full throughput the workers' in-flight window alone holds frames ~0.5 s (bench
    # pipeline p95), so a 500 ms budget would call the pipeline's best throughput CRITICAL;
    # still half the queue SLO's 2 s of frames.
    frame_latency_ms: float = setting(1000.0, "capture-to-detections limit in milliseconds",
                                      gt=0, le=600_000)
    order_latency_s: float = setting(5.0, "order-end-to-verdict limit in seconds", gt=0,
                                     le=3600)
    queue_factor: float = setting(2.0, "task queue limit as a multiple of the summed FPS",
                                  gt=0, le=1000)
    warning_margin: float = setting(0.2, "share of a limit below it where WARNING starts",
                                    ge=0, lt=1)


@dataclass(frozen=True)
class ControllerConfig:
    """Who sets FPS, resolution and grade."""

    kind: Literal["aif", "heuristic", "static"] = setting(
        "aif", "aif: Active-Inference agent; heuristic: thresholds; static: never changes")
    interval_s: float = setting(1.0, "seconds between controller decisions", gt=0, le=3600)


@dataclass(frozen=True)
class ScalingConfig:
    """The station autoscaler (seed-compatible keys)."""

    enabled: bool = setting(False, "add and remove stations automatically")
    scale_up_gpu_threshold: float = setting(85.0, "scale up only below this GPU use (%)",
                                            ge=0, le=100)
    scale_up_cpu_threshold: float = setting(80.0, "scale up only below this CPU use (%)",
                                            ge=0, le=100)
    scale_up_latency_threshold: float = setting(
        5.0, "scale up only below this order latency (s)", gt=0, le=3600)
    scale_down_gpu_threshold: float = setting(95.0, "scale down above this GPU use (%)",
                                              ge=0, le=100)
    scale_down_cpu_threshold: float = setting(90.0, "scale down above this CPU use (%)",
                                              ge=0, le=100)
    scale_down_latency_threshold: float = setting(
        5.0, "scale down above this order latency (s)", gt=0, le=3600)
    hysteresis_window: float = setting(30.0, "seconds a condition must hold before acting",
                                       ge=0, le=86_400)
    min_stations: int = setting(1, "fewest active stations", ge=1, le=256)
    max_stations: int = setting(8, "most active stations", ge=1, le=256)


@dataclass(frozen=True)
class SupervisionConfig:
    """How the engine restarts crashed stations and local workers, and drains removed ones."""

    restart_backoff_max_s: float = setting(
        30.0, "longest wait before restarting a crashed station or local worker (the wait "
        "doubles from 1 s)", ge=1, le=3600)
    max_crashes: int = setting(
        5, "crashes within crash_window_s after which a station stays down (CRASHED) and a "
        "local worker is not restarted", ge=1, le=1000)
    crash_window_s: float = setting(300.0, "the window max_crashes counts in (seconds)",
                                    gt=0, le=86_400)
    drain_timeout_s: float = setting(
        20.0, "how long a removed station may take to finish the order on its counter; after "
        "it the order ends failed (station removed)", ge=0, le=3600)


@dataclass(frozen=True)
class RedisConfig:
    """Redis server for the redis queue backend (stations on other machines)."""

    host: str = setting("localhost", "Redis host")
    port: int = setting(6379, "Redis port", ge=1, le=65535)
    db: int = setting(0, "Redis database number", ge=0, le=10_000)
    username: str | None = setting(None, "Redis user (ACL); null = the default user")
    password: str | None = setting(
        None, "Redis password (AUTH); null = the one in the environment variable password_env, "
        "or none", secret=True)
    password_env: str = setting(
        "EDGEAPP_REDIS_PASSWORD", "environment variable that holds the Redis password")
    tls: bool = setting(False, "connect with TLS (rediss://)")
    tls_ca_file: Path | None = setting(
        None, "CA certificates (PEM) that signed the server's certificate; null = the system's")
    namespace: str = setting(
        "edgeapp", "prefix of every key, so that several engines can share one Redis server")
    heartbeat_s: float = setting(1.0, "seconds between a station's heartbeats", gt=0, le=60)
    silent_after_s: float = setting(
        5.0, "a station not heard from this long is OFFLINE and its order fails", gt=0,
        le=3600)
    buffer_messages: int = setting(
        10_000, "messages a station keeps while Redis is down (heartbeats, metrics and "
        "previews are dropped first)", ge=100, le=10_000_000)
    stream_maxlen: int = setting(10_000, "approximate length limit of each Redis stream",
                                 ge=100, le=10_000_000)
    preview_fps: float = setting(4.0, "JPEG previews per second a station sends for its tile",
                                 gt=0, le=60)


@dataclass(frozen=True)
class Config:
    """The whole edgeapp config."""

    stations: tuple[StationConfig, ...] = listing(
        _default_stations, "camera stations, one entry per camera", min_items=1)
    orders_path: Path = path_setting(
        lambda _: paths.demo_orders_path(),
        "orders JSON (order id -> items); null = the demo orders", must_exist=True)
    inventory_path: Path = path_setting(
        lambda _: paths.demo_inventory_path(),
        "inventory JSON (known items); null = the demo inventory", must_exist=True)
    data_dir: Path = path_setting(
        lambda _: paths.user_data_dir(),
        "results, evidence, keys and logs; null = the platform's user data folder")
    stream: StreamConfig = section(StreamConfig)
    models: ModelsConfig = section(ModelsConfig)
    distributed: DistributedConfig = section(DistributedConfig)
    vlm: VlmConfig = section(VlmConfig)
    orders: OrdersConfig = section(OrdersConfig)
    slo: SloConfig = section(SloConfig)
    controller: ControllerConfig = section(ControllerConfig)
    scaling: ScalingConfig = section(ScalingConfig)
    supervision: SupervisionConfig = section(SupervisionConfig)
    queue_backend: Literal["multiprocessing", "redis"] = setting(
        "multiprocessing", "queue between stations and the engine")
    redis: RedisConfig = section(RedisConfig)
