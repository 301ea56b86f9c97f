"""GPU use, measured or ``None``: NVIDIA through NVML, Intel through DRM fdinfo, else nothing.

No invented numbers (STYLE): where no probe can read this machine's GPU, ``detect_gpu()``
returns ``None`` and every GPU figure stays ``None`` ("n/a"); it is never derived from the CPU.

- NVIDIA: ``nvidia-ml-py`` (``import pynvml``), imported only here and only when the sampler
  starts, so the worker path never needs it. Utilisation is NVML's own (the share of the last
  sample period a kernel ran) of the busiest device; memory is used / total over all devices.
- Intel (i915, xe): the DRM client usage stats each open render node publishes in
  ``/proc/<pid>/fdinfo/<fd>`` (kernel ``Documentation/gpu/drm-usage-stats.rst``): busy
  nanoseconds per engine class (i915: ``drm-engine-<class>: N ns``) or busy and total cycles
  (xe: ``drm-cycles-<class>`` / ``drm-total-cycles-<class>``). The GPU's use between two reads
  is the busiest engine class's busy share, summed over every client this user can read. Intel
  devices are found in sysfs (``/sys/class/drm/card*/device/vendor`` = 0x8086). fdinfo has no
  device memory total, so Intel memory use is ``None``.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Protocol

logger = logging.getLogger(__name__)

INTEL_VENDOR = "0x8086"
INTEL_DRIVERS = frozenset({"i915", "xe"})
# Rescan /proc for render-node clients this often; in between only their fdinfo is re-read.
_RESCAN_S = 5.0


@dataclass(frozen=True)
class GpuUsage:
    """One GPU reading; a figure the probe cannot measure is ``None``."""

    percent: float | None
    memory_percent: float | None


class GpuProbe(Protocol):
    """Reads one kind of GPU."""

    name: str

    def read(self) -> GpuUsage:
        """The GPU's use now (or since the previous read)."""
        ...

    def close(self) -> None:
        """Release the library or files the probe holds."""
        ...


def detect_gpu(proc_root: Path = Path("/proc"),
               sys_root: Path = Path("/sys")) -> GpuProbe | None:
    """The probe for this machine's GPU: NVML, then Intel fdinfo; ``None`` when neither."""
    try:
        import pynvml
    except ImportError:
        pynvml = None
    if pynvml is not None:
        try:
            return NvmlProbe(pynvml)
        except Exception as exc:  # NVMLError_LibraryNotFound / DriverNotLoaded / no device
            logger.debug("no NVIDIA GPU through NVML: %r", exc)
    if intel_devices(sys_root):
        return IntelFdinfoProbe(proc_root)
    return None


# ── NVIDIA ───────────────────────────────────────────────────────────────────────────────────


class NvmlProbe:
    """NVML's utilisation and memory of every NVIDIA device (``nvml`` is the pynvml module)."""

    def __init__(self, nvml: ModuleType) -> None:
        self._nvml = nvml
        nvml.nvmlInit()
        try:
            count = int(nvml.nvmlDeviceGetCount())
            if count < 1:
                raise LookupError("NVML reports no device")
            self._handles = [nvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
            self.name = "nvml: " + ", ".join(_text(nvml.nvmlDeviceGetName(h))
                                             for h in self._handles)
        except BaseException:
            nvml.nvmlShutdown()
            raise

    def read(self) -> GpuUsage:
        """The busiest device's utilisation; memory used over all devices' total."""
        nvml = self._nvml
        busy, used, total = [], 0, 0
        for handle in self._handles:
            busy.append(float(nvml.nvmlDeviceGetUtilizationRates(handle).gpu))
            memory = nvml.nvmlDeviceGetMemoryInfo(handle)
            used, total = used + int(memory.used), total + int(memory.total)
        return GpuUsage(max(busy), 100.0 * used / total if total > 0 else None)

    def close(self) -> None:
        """Shut NVML down."""
        self._nvml.nvmlShutdown()


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


# ── Intel (DRM fdinfo) ───────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class DrmClient:
    """One DRM client's usage counters, parsed from its fdinfo."""

    driver: str
    client_id: str
    pdev: str | None
    busy_ns: Mapping[str, int] = field(default_factory=dict)       # i915: engine -> ns
    cycles: Mapping[str, int] = field(default_factory=dict)        # xe: engine -> busy cycles
    total_cycles: Mapping[str, int] = field(default_factory=dict)  # xe: engine -> all cycles
    capacity: Mapping[str, int] = field(default_factory=dict)      # engine -> identical units

    @property
    def key(self) -> tuple[str | None, str]:
        """Who the client is: several fds (and forks) share one client id per device."""
        return self.pdev, self.client_id


def parse_drm_fdinfo(text: str) -> DrmClient | None:
    """The DRM usage counters of one fdinfo file; ``None`` when it is no DRM client's."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.startswith("drm-"):
            values[key.strip()] = value.strip()
    if "drm-driver" not in values or "drm-client-id" not in values:
        return None
    busy, cycles, total, capacity = {}, {}, {}, {}
    for key, value in values.items():
        number = value.split()[0] if value else ""
        if not number.isdigit():
            continue
        if key.startswith("drm-engine-capacity-"):
            capacity[key.removeprefix("drm-engine-capacity-")] = int(number)
        elif key.startswith("drm-engine-"):
            busy[key.removeprefix("drm-engine-")] = int(number)
        elif key.startswith("drm-total-cycles-"):
            total[key.removeprefix("drm-total-cycles-")] = int(number)
        elif key.startswith("drm-cycles-"):
            cycles[key.removeprefix("drm-cycles-")] = int(number)
    return DrmClient(values["drm-driver"], values["drm-client-id"], values.get("drm-pdev"),
                     busy, cycles, total, capacity)


def engine_busy_percent(old: Mapping[tuple[str | None, str], DrmClient],
                        new: Mapping[tuple[str | None, str], DrmClient],
                        wall_ns: int) -> dict[str, float]:
    """Each engine class's busy share (percent of its capacity) between two sets of clients.

    Only clients present in both count: a client's first reading has nothing to subtract.
    """
    busy: dict[str, float] = {}
    for key, now in new.items():
        before = old.get(key)
        if before is None:
            continue
        for engine, ns in now.busy_ns.items():
            if wall_ns > 0 and engine in before.busy_ns:
                share = (ns - before.busy_ns[engine]) / (wall_ns * now.capacity.get(engine, 1))
                busy[engine] = busy.get(engine, 0.0) + share
        for engine, cycles in now.cycles.items():
            span = now.total_cycles.get(engine, 0) - before.total_cycles.get(engine, 0)
            if span > 0 and engine in before.cycles:
                share = (cycles - before.cycles[engine]) / (span * now.capacity.get(engine, 1))
                busy[engine] = busy.get(engine, 0.0) + share
    return {engine: min(100.0, max(0.0, 100.0 * share)) for engine, share in busy.items()}


def intel_devices(sys_root: Path = Path("/sys")) -> list[Path]:
    """The DRM cards whose PCI vendor is Intel."""
    found = []
    for vendor in sorted((sys_root / "class" / "drm").glob("card*/device/vendor")):
        try:
            if vendor.read_text().strip().lower() == INTEL_VENDOR:
                found.append(vendor.parent.parent)
        except OSError:
            continue
    return found


class IntelFdinfoProbe:
    """The busiest Intel engine class over every readable DRM client, between two reads."""

    name = "intel: drm fdinfo"

    def __init__(self, proc_root: Path = Path("/proc")) -> None:
        self._proc = proc_root
        self._files: list[Path] = []
        self._scanned = -float("inf")
        self._last: tuple[int, dict[tuple[str | None, str], DrmClient]] | None = None

    def read(self) -> GpuUsage:
        """Busy percent since the previous read (``None`` on the first); memory ``None``."""
        now = time.monotonic()
        if now - self._scanned >= _RESCAN_S:
            self._files, self._scanned = drm_fdinfo_files(self._proc), now
        stamp = time.monotonic_ns()
        clients: dict[tuple[str | None, str], DrmClient] = {}
        for path in self._files:
            try:
                client = parse_drm_fdinfo(path.read_text())
            except OSError:  # the fd or its process is gone
                continue
            if client is not None and client.driver in INTEL_DRIVERS:
                clients.setdefault(client.key, client)
        last, self._last = self._last, (stamp, clients)
        if last is None:
            return GpuUsage(None, None)
        busy = engine_busy_percent(last[1], clients, stamp - last[0])
        # No client seen in both reads (none of ours has the GPU open, or only since this
        # read): nothing was measured, so the figure is None, not 0.
        return GpuUsage(max(busy.values()) if busy else None, None)

    def close(self) -> None:
        """Nothing is held open between reads."""


def drm_fdinfo_files(proc_root: Path = Path("/proc")) -> list[Path]:
    """fdinfo files of every fd (of every process this user may read) open on a DRM node."""
    found = []
    for proc in proc_root.iterdir():
        if not proc.name.isdigit():
            continue
        try:
            fds = list((proc / "fd").iterdir())
        except OSError:  # another user's process, or gone
            continue
        for fd in fds:
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("/dev/dri/"):
                found.append(proc / "fdinfo" / fd.name)
    return found
