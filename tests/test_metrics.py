"""The metrics parts on their own: probes, GPU readers, per-order figures, the history ring."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest

from edgeapp.engine.api import MetricsPoint
from edgeapp.engine.metrics import TimedWindow
from edgeapp.engine.metrics.gpu import (
    IntelFdinfoProbe,
    NvmlProbe,
    detect_gpu,
    engine_busy_percent,
    intel_devices,
    parse_drm_fdinfo,
)
from edgeapp.engine.metrics.history import MetricsHistory
from edgeapp.engine.metrics.orders import OrderMetrics
from edgeapp.engine.metrics.probe import MachineProbe, machine_cpu_percent, process_usage
from edgeapp.engine.orders.result import OrderResult, OrderStatus

# fdinfo of an i915 render-node client, in the kernel's format (drm-usage-stats.rst): busy
# nanoseconds per engine class, a capacity where a class has several engines.
I915_FDINFO = """pos:\t0
flags:\t02100002
mnt_id:\t26
ino:\t685
drm-driver:\ti915
drm-client-id:\t18
drm-pdev:\t0000:00:02.0
drm-total-system0:\t1024 KiB
drm-resident-system0:\t1024 KiB
drm-engine-render:\t{render} ns
drm-engine-copy:\t2035071108 ns
drm-engine-video:\t{video} ns
drm-engine-capacity-video:\t2
drm-engine-video-enhance:\t0 ns
"""

# fdinfo of an xe client: busy and total GPU cycles per engine class.
XE_FDINFO = """pos:\t0
flags:\t0100002
mnt_id:\t26
ino:\t685
drm-driver:\txe
drm-client-id:\t3
drm-pdev:\t0000:03:00.0
drm-total-vram0:\t23992 KiB
drm-shared-vram0:\t16 MiB
drm-cycles-rcs:\t{rcs}
drm-total-cycles-rcs:\t{total}
drm-cycles-ccs:\t{ccs}
drm-total-cycles-ccs:\t{total}
drm-engine-capacity-ccs:\t4
"""


def _point(ts: float) -> MetricsPoint:
    return MetricsPoint(ts=ts, cpu_percent=None, memory_percent=None, gpu_percent=None,
                        gpu_memory_percent=None, process_cpu_percent={}, process_rss_mb={},
                        fps_in={}, fps_processed={}, frames_dropped={}, orders_per_min=None,
                        order_latency_p95_s=None, task_queue=0, tasks_leased=0, vlm_queue=0,
                        vlm_in_flight=0, events_dropped=0, stations_running=0)


def _result(station: str, status: OrderStatus, latency: float | None) -> OrderResult:
    return OrderResult(order_id="1", station_id=station, expected_items={},
                       detected_items={}, status=status, latency_s=latency)


# ── history ──────────────────────────────────────────────────────────────────────────────────


def test_history_keeps_only_the_newest_points_and_filters_by_time() -> None:
    history = MetricsHistory(capacity=5)
    for ts in range(1, 9):
        history.append(_point(float(ts)))
    assert len(history) == 5, "the ring is bounded"
    assert [p.ts for p in history.since(None)] == [4.0, 5.0, 6.0, 7.0, 8.0]
    assert [p.ts for p in history.since(6.0)] == [7.0, 8.0], "since() is strictly newer"
    assert [p.ts for p in history.since(6.5)] == [7.0, 8.0]
    assert history.since(8.0) == []
    assert history.latest() is not None and history.latest().ts == 8.0


def test_default_history_holds_at_least_15_minutes_at_one_point_a_second() -> None:
    assert MetricsHistory().capacity >= 15 * 60


# ── per-order figures ────────────────────────────────────────────────────────────────────────


def test_order_metrics_count_by_station_and_status_and_bucket_each_latency() -> None:
    orders = OrderMetrics(buckets=(1.0, 5.0), recent_s=60.0)
    orders.add(_result("a", OrderStatus.VALIDATED, 0.5), now=0.0)
    orders.add(_result("a", OrderStatus.VALIDATED, 5.0), now=1.0)   # on a bound: le=5 counts it
    orders.add(_result("b", OrderStatus.MISMATCH, 7.0), now=2.0)
    orders.add(_result("b", OrderStatus.FAILED, None), now=3.0)     # no latency measured
    assert orders.counts() == {("a", "validated"): 2, ("b", "mismatch"): 1, ("b", "failed"): 1}
    hist = orders.histogram()
    assert [n for _, n in hist.buckets] == [1, 2, 3], "cumulative: le 1, le 5, +Inf"
    assert hist.count == 3 and hist.sum_s == pytest.approx(12.5)


def test_recent_latency_is_a_true_percentile_of_the_last_minute_of_orders() -> None:
    orders = OrderMetrics(recent_s=60.0)
    orders.add(_result("a", OrderStatus.VALIDATED, 100.0), now=0.0)  # over a minute old below
    for i, latency in enumerate((1.0, 2.0, 3.0, 4.0)):
        orders.add(_result("a", OrderStatus.VALIDATED, latency), now=50.0 + i)
    assert orders.recent_latency(50, 100, now=70.0) == (2.5, 4.0), \
        "the 100 s order of t=0 has left the window; p50 interpolates between orders"
    assert orders.recent_latency(95, now=200.0) == (None,), "no order in the last minute"


def test_timed_window_forgets_samples_older_than_its_span() -> None:
    window = TimedWindow(10.0)
    window.add(1.0, now=0.0)
    window.add(2.0, now=5.0)
    assert window.values(now=9.0) == [1.0, 2.0]
    assert window.values(now=12.0) == [2.0]


# ── machine and processes ────────────────────────────────────────────────────────────────────


def test_machine_probe_reads_the_machine_and_each_named_live_process() -> None:
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    idle = subprocess.Popen(["sleep", "60"])
    try:
        probe = MachineProbe()
        pids = {"engine": os.getpid(), "busy": busy.pid, "idle": idle.pid, "gone": 2**22 + 7}
        first = probe.read(pids)
        time.sleep(1.0)
        second = probe.read(pids)
    finally:
        for child in (busy, idle):
            child.kill()
            child.wait()
    assert set(second.processes) == {"engine", "busy", "idle"}, \
        "a pid that does not exist is left out"
    usage = process_usage(first, second)
    assert usage["busy"].pid == busy.pid
    # On a loaded machine a spinning process gets only its share of a core; a sleeping one
    # gets none: the figures tell them apart whatever else runs.
    assert usage["busy"].cpu_percent is not None and usage["idle"].cpu_percent is not None
    assert usage["idle"].cpu_percent < 3.0
    assert usage["busy"].cpu_percent > usage["idle"].cpu_percent + 3.0
    assert usage["engine"].rss_mb > 10.0
    cpu = machine_cpu_percent(first, second)
    assert cpu is not None and 0.0 < cpu <= 100.0
    assert 0.0 < second.memory_percent < 100.0


# ── GPU ──────────────────────────────────────────────────────────────────────────────────────


def test_gpu_probe_is_none_on_a_machine_without_a_gpu() -> None:
    if Path("/dev/nvidia0").exists() or Path("/dev/dri").exists():
        pytest.skip("this machine has a GPU device node")
    assert detect_gpu() is None, "no NVIDIA and no Intel GPU: every GPU figure is n/a"


def _fake_pynvml(utilisation: list[int], memory: list[tuple[int, int]],
                 fail_init: bool = False) -> types.ModuleType:
    """A stand-in for the ``pynvml`` module (nvidia-ml-py) with the calls NvmlProbe makes."""
    nvml = types.ModuleType("pynvml")
    calls: list[str] = []

    class NVMLError(Exception):
        pass

    def init() -> None:
        calls.append("init")
        if fail_init:
            raise NVMLError("NVML Shared Library Not Found")

    nvml.NVMLError = NVMLError  # type: ignore[attr-defined]
    nvml.calls = calls  # type: ignore[attr-defined]
    nvml.nvmlInit = init  # type: ignore[attr-defined]
    nvml.nvmlShutdown = lambda: calls.append("shutdown")  # type: ignore[attr-defined]
    nvml.nvmlDeviceGetCount = lambda: len(utilisation)  # type: ignore[attr-defined]
    nvml.nvmlDeviceGetHandleByIndex = lambda i: i  # type: ignore[attr-defined]
    nvml.nvmlDeviceGetName = lambda h: f"GPU {h}".encode()  # type: ignore[attr-defined]
    nvml.nvmlDeviceGetUtilizationRates = (  # type: ignore[attr-defined]
        lambda h: types.SimpleNamespace(gpu=utilisation[h], memory=0))
    nvml.nvmlDeviceGetMemoryInfo = (  # type: ignore[attr-defined]
        lambda h: types.SimpleNamespace(used=memory[h][0], total=memory[h][1],
                                        free=memory[h][1] - memory[h][0]))
    return nvml


def test_nvml_probe_reads_the_busiest_device_and_all_memory(monkeypatch, tmp_path) -> None:
    """NVML is faked: a module injected as ``pynvml`` through ``sys.modules`` (this machine
    has no NVIDIA driver), so what is tested is how NvmlProbe reads and combines NVML's
    answers, not NVML itself."""
    fake = _fake_pynvml([30, 75], [(2 * 2**30, 8 * 2**30), (6 * 2**30, 8 * 2**30)])
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    probe = detect_gpu(proc_root=tmp_path, sys_root=tmp_path)
    assert isinstance(probe, NvmlProbe)
    assert probe.name == "nvml: GPU 0, GPU 1"
    usage = probe.read()
    assert usage.percent == 75.0, "the busiest device"
    assert usage.memory_percent == pytest.approx(50.0), "8 of 16 GiB over both devices"
    probe.close()
    assert fake.calls == ["init", "shutdown"]


def test_nvml_without_a_driver_gives_no_probe(monkeypatch, tmp_path) -> None:
    """NVML is faked (injected via ``sys.modules``) to fail at init, as it does without a
    driver: no probe, and NVML is not left half open."""
    fake = _fake_pynvml([], [], fail_init=True)
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    assert detect_gpu(proc_root=tmp_path, sys_root=tmp_path) is None


def test_nvml_with_no_device_shuts_nvml_down(monkeypatch, tmp_path) -> None:
    """NVML is faked (injected via ``sys.modules``): a driver with zero devices."""
    fake = _fake_pynvml([], [])
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    assert detect_gpu(proc_root=tmp_path, sys_root=tmp_path) is None
    assert fake.calls == ["init", "shutdown"]


def test_i915_fdinfo_is_parsed_into_busy_nanoseconds_per_engine() -> None:
    client = parse_drm_fdinfo(I915_FDINFO.format(render=9288864723, video=0))
    assert client is not None
    assert (client.driver, client.client_id, client.pdev) == ("i915", "18", "0000:00:02.0")
    assert client.busy_ns == {"render": 9288864723, "copy": 2035071108, "video": 0,
                              "video-enhance": 0}
    assert client.capacity == {"video": 2}
    assert client.cycles == {}


def test_xe_fdinfo_is_parsed_into_cycles_per_engine() -> None:
    client = parse_drm_fdinfo(XE_FDINFO.format(rcs=28257900, ccs=0, total=7655183225))
    assert client is not None and client.driver == "xe"
    assert client.cycles == {"rcs": 28257900, "ccs": 0}
    assert client.total_cycles == {"rcs": 7655183225, "ccs": 7655183225}
    assert client.capacity == {"ccs": 4}
    assert client.busy_ns == {}, "memory keys (drm-total-vram0) are not engines"


def test_a_non_drm_fdinfo_is_no_client() -> None:
    assert parse_drm_fdinfo("pos:\t0\nflags:\t02\nmnt_id:\t15\nino:\t1234\n") is None


def test_engine_busy_share_between_two_reads() -> None:
    def i915(render: int, video: int):
        client = parse_drm_fdinfo(I915_FDINFO.format(render=render, video=video))
        return {client.key: client}

    def xe(rcs: int, ccs: int, total: int):
        client = parse_drm_fdinfo(XE_FDINFO.format(rcs=rcs, ccs=ccs, total=total))
        return {client.key: client}

    second = 10**9
    busy = engine_busy_percent(i915(0, 0), i915(second // 4, second), second)
    assert busy["render"] == pytest.approx(25.0)
    assert busy["video"] == pytest.approx(50.0), "1 s busy over 2 video engines in 1 s"
    assert busy["copy"] == 0.0
    busy = engine_busy_percent(xe(0, 0, 1000), xe(600, 2000, 2000), second)
    assert busy == {"rcs": pytest.approx(60.0), "ccs": pytest.approx(50.0)}
    assert engine_busy_percent({}, i915(5, 5), second) == {}, "a new client has no delta yet"


def _fake_proc(root: Path, pid: int, fdinfo: str) -> Path:
    """A /proc tree with one process holding fd 5 on a render node."""
    (root / str(pid) / "fd").mkdir(parents=True, exist_ok=True)
    (root / str(pid) / "fdinfo").mkdir(exist_ok=True)
    link = root / str(pid) / "fd" / "5"
    if not link.is_symlink():
        link.symlink_to("/dev/dri/renderD128")
    (root / str(pid) / "fd" / "1").touch()  # not a DRM node
    info = root / str(pid) / "fdinfo" / "5"
    info.write_text(fdinfo)
    return info


def test_intel_probe_reads_clients_from_proc_and_gives_the_busiest_engine(tmp_path) -> None:
    """A fake /proc tree in the real fdinfo format; the second read sees 0.5 s of render."""
    info = _fake_proc(tmp_path / "proc", 4242, I915_FDINFO.format(render=0, video=0))
    probe = IntelFdinfoProbe(tmp_path / "proc")
    first = probe.read()
    assert first.percent is None, "one read has nothing to subtract"
    t0 = time.monotonic()
    time.sleep(0.2)
    info.write_text(I915_FDINFO.format(render=10**8, video=0))  # 0.1 s busy
    second = probe.read()
    elapsed = time.monotonic() - t0
    assert second.percent is not None
    assert second.percent == pytest.approx(100.0 * 0.1 / elapsed, rel=0.3)
    assert second.memory_percent is None, "fdinfo has no device memory total"


def test_intel_devices_are_found_by_pci_vendor_and_picked_after_nvml(monkeypatch,
                                                                      tmp_path) -> None:
    """NVML is faked (injected via ``sys.modules``) to find no driver; sysfs is a fake tree."""
    monkeypatch.setitem(sys.modules, "pynvml", _fake_pynvml([], [], fail_init=True))
    for card, vendor in (("card0", "0x10de"), ("card1", "0x8086")):
        (tmp_path / "class" / "drm" / card / "device").mkdir(parents=True)
        (tmp_path / "class" / "drm" / card / "device" / "vendor").write_text(vendor + "\n")
    assert intel_devices(tmp_path) == [tmp_path / "class" / "drm" / "card1"]
    assert isinstance(detect_gpu(proc_root=tmp_path, sys_root=tmp_path), IntelFdinfoProbe)
