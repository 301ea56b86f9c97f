"""A benchmark report on disk: ``benchmark_results_TIMESTAMP.json`` (everything, the
per-second samples included), ``.csv`` (one row per scenario), and two PNG plots, in one
results folder beside each scenario's results store."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from edgeapp.engine.bench.measure import ScenarioResult
from edgeapp.engine.bench.plots import latency_plot, throughput_plot
from edgeapp.engine.bench.runner import BenchmarkReport

# The summary's columns, in the CSV's order (the scenario's own settings first).
CSV_COLUMNS = (
    "scenario", "stations", "controller", "fixed", "vlm_backend", "duration_s", "warmup_s",
    "cancelled", "error", "orders", "orders_per_s", "frames", "frames_per_s",
    "latency_avg_s", "latency_p50_s", "latency_p95_s", "latency_p99_s", "success_rate",
    "judged", "correct", "verdict_accuracy", "frames_dropped", "slo_fulfilment",
    "cpu_avg", "cpu_max", "gpu_avg", "gpu_max", "memory_avg", "memory_max", "rss_max_mb",
    "quality", "fps_level_end", "resolution_level_end", "grade_end", "results_db",
)


def summary_row(result: ScenarioResult) -> dict[str, Any]:
    """One scenario's figures as a flat row (no per-second samples)."""
    s, end = result.scenario, result.parameters_end
    row: dict[str, Any] = {
        "scenario": s.name, "stations": s.stations, "controller": s.controller,
        "fixed": s.fixed.label() if s.fixed.any else None, "vlm_backend": s.vlm_backend,
        "fps_level_end": end.get("fps_level"), "resolution_level_end": end.get("resolution_level"),
        "grade_end": end.get("grade"),
    }
    for name in CSV_COLUMNS:
        if name not in row:
            row[name] = getattr(result, name)
    return {name: row[name] for name in CSV_COLUMNS}


def summary(report: BenchmarkReport) -> dict[str, Any]:
    """What ``edgeapp bench stations --json`` prints: the rows, the machine, the files."""
    return {"scenarios": [{**summary_row(r), "by_status": r.by_status,
                           "slo_critical_s": r.slo_critical_s} for r in report.results],
            "cancelled": report.cancelled, "machine": report.machine,
            "settings": report.settings, "files": report.files}


def write_report(report: BenchmarkReport, out_dir: Path) -> dict[str, str]:
    """Write the JSON, the CSV and the plots into ``out_dir``; their paths (also kept in
    ``report.files``)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = out_dir / report.stem
    files = {"json": stem.with_suffix(".json"), "csv": stem.with_suffix(".csv")}
    if report.results:
        files["latency_png"] = latency_plot(report.results, Path(f"{stem}_latency.png"))
        files["throughput_png"] = throughput_plot(report.results,
                                                  Path(f"{stem}_throughput.png"))
    report.files = {k: str(v) for k, v in files.items()}
    with open(files["csv"], "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for result in report.results:
            writer.writerow({k: "" if v is None else v for k, v in summary_row(result).items()})
    files["json"].write_text(json.dumps(report.to_dict(), indent=1), encoding="utf-8")
    return report.files

