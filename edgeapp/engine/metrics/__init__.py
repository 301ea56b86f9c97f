"""What the engine measures: meters the parts keep, and the sampler that reads the machine.

The small meters are importable from here (``RateMeter``, ``LatencyWindow``,
``TimedWindow``, ``percentiles``). The rest lives one concern per module and is imported
from its module, so that importing a meter pulls in nothing else:

- ``probe``: machine and per-process CPU and memory (psutil counters, deltas between reads);
- ``gpu``: GPU use through NVML (NVIDIA) or DRM fdinfo (Intel), else ``None``;
- ``orders``: per-order counts, the latency histogram and the last minute's latencies;
- ``history``: the bounded ring of ``MetricsPoint``s the window plots;
- ``sampler``: the ``engine-metrics`` thread that reads all of the above every 0.5 s;
- ``prometheus``: the ``/metrics`` endpoint (``prometheus_client``, its own registry).
"""

from __future__ import annotations

from edgeapp.engine.metrics.windows import LatencyWindow, RateMeter, TimedWindow, percentiles

__all__ = ["LatencyWindow", "RateMeter", "TimedWindow", "percentiles"]
