"""``edgeapp bench NAME``: the micro-benchmarks, each printed as one JSON object."""

from __future__ import annotations

import argparse
import importlib
import json

NAME = "bench"

# name -> (module, function taking the parsed args and returning a dict, help). Each entry
# exists only once its benchmark is built.
BENCHES: dict[str, tuple[str, str, str]] = {
    "camera": ("edgeapp.engine.bench.camera", "run_camera_bench",
               "synthetic camera: can one core render the demo's streams in real time"),
    "ocr": ("edgeapp.engine.bench.ocr", "run_ocr_bench",
            "order-ID reader: accuracy on held-out synthetic tickets"),
    "detector": ("edgeapp.engine.bench.detector", "run_detector_bench",
                 "detector: our OpenVINO wrapper against OpenVINO's own benchmark_app"),
    "transport": ("edgeapp.engine.bench.transport", "run_transport_bench",
                  "Producer -> worker -> Collector against a raw pyzmq PUSH/PULL loop"),
    "pipeline": ("edgeapp.engine.bench.pipeline", "run_pipeline_bench",
                 "frames through Producer -> K detector workers -> Collector vs benchmark_app"),
    "batcher": ("edgeapp.engine.bench.batcher", "run_batcher_bench",
                "VLM batcher on the local backend: batched vs one-by-one, 8 stations, as a "
                "share of the backend's own gain from batching"),
    "controller": ("edgeapp.engine.bench.controller", "run_controller_bench",
                   "elasticity controllers (AIF, heuristic, static) on simulated scenarios"),
    "orders": ("edgeapp.engine.bench.orders", "run_orders_bench",
               "the order flow offline on synthetic scenes: right verdicts, and why not"),
    "autoscale": ("edgeapp.engine.bench.autoscale", "run_autoscale_bench",
                  "the demo autoscaling from 1 station: stations reached, time to steady, "
                  "flapping, SLOs, accuracy"),
    "ui": ("edgeapp.ui.bench.launch", "run_ui_bench",
           "the window offscreen on 8 synthetic stations: frames shown, UI frame time"),
    "queue": ("edgeapp.engine.bench.queue", "run_queue_bench",
              "a VLM request's round trip through each queue backend (pipes, Redis)"),
    "soak": ("edgeapp.engine.bench.soak", "run_soak_bench",
             "the demo for --minutes N: RSS, open files and threads of every process"),
    "stations": ("edgeapp.engine.bench.stations", "run_stations_bench",
                 "the whole pipeline on 1..N stations: throughput, latency, accuracy, SLOs"),
    "capacity": ("edgeapp.engine.bench.capacity", "run_capacity_bench",
                 "the most stations this machine sustains, and the best fixed setting for them"),
}


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``bench`` and one sub-command per benchmark."""
    p = subparsers.add_parser(NAME, help="run a benchmark and print its figures")
    sub = p.add_subparsers(dest="bench", required=True, metavar="NAME")
    for name, (module, _func, text) in BENCHES.items():
        q = sub.add_parser(name, help=text)
        q.add_argument("--json", action="store_true", help="print one JSON object")
        adder = getattr(importlib.import_module(module), "add_arguments", None)
        if adder is not None:
            adder(q)


def run(args: argparse.Namespace) -> int:
    """Run the chosen benchmark; print JSON (``--json``), its own ``format_text`` or
    ``key=value`` rows."""
    module, func, _ = BENCHES[args.bench]
    bench = importlib.import_module(module)
    result = getattr(bench, func)(args)
    text = getattr(bench, "format_text", None)
    if args.json:
        print(json.dumps(result))
    elif text is not None:
        print(text(result))
    else:
        rows = result if isinstance(result, list) else [result]
        for row in rows:
            print("  ".join(f"{k}={v}" for k, v in row.items()))
    return 0
