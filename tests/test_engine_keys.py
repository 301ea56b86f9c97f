"""CURVE keys through the Engine: `edgeapp keys init` turns them on, the engine's own local
worker gets a key of its own, a remote `edgeapp --worker --keys DIR` made with
`edgeapp keys add-worker` gets work, and a worker whose key nobody authorised is refused
with exit code 11. Real ZeroMQ CURVE sockets, real worker processes, the real detector."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import openvino  # noqa: F401 - imported up front: its telemetry starts a lasting idle thread
import yaml
import zmq.auth
from engine_helpers import EventLog, engine_config, engine_threads, short_dir

from edgeapp.engine.api import WorkerJoined
from edgeapp.engine.engine import Engine

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def _edgeapp(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "edgeapp", *args], cwd=ROOT, env=ENV,
                          text=True, capture_output=True, timeout=120)


def _worker(connect: str, keys: Path, name: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "edgeapp", "--worker", "--connect", connect, "--keys", str(keys),
         "--name", name, "--connect-timeout", "60"],
        cwd=ROOT, env=ENV, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_a_keyed_engine_serves_its_own_and_authorised_workers_and_refuses_a_stranger():
    # Given an engine's config, with CURVE keys made by `edgeapp keys` and a worker box
    # authorised for them
    root = short_dir()
    config = engine_config(root, [{"name": "cam", "seed": 3}], vlm={"grade": "low"})
    config_file = root / "edgeapp.yaml"
    config_file.write_text(yaml.safe_dump({"data_dir": str(root / "data")}))
    init = _edgeapp("--config", str(config_file), "keys", "init")
    assert init.returncode == 0, init.stderr
    added = _edgeapp("--config", str(config_file), "keys", "add-worker", "box-7")
    assert added.returncode == 0, added.stderr
    box = Path(config.distributed.keys_dir) / "workers" / "box-7"
    assert str(box) in added.stdout and box.is_dir(), (added.stdout, box)
    stranger = root / "stranger"  # a keypair nobody authorised, with the server's public key
    stranger.mkdir()
    zmq.auth.create_certificates(stranger, "worker")
    shutil.copy(box / "server.key", stranger / "server.key")

    log = EventLog()
    engine = Engine(config)
    engine.subscribe(log)
    engine.start()
    remote = refused = None
    try:
        # Then the engine's own worker, on a key of its own, detects the station's frames
        log.wait(lambda: any(e.name.startswith("local") for e in log.of(WorkerJoined)), 120,
                 "the local worker joined")
        log.wait(lambda: (f := engine.latest_frame("cam")) is not None
                 and f.detections is not None, 120, "detections from the local worker")

        # When the authorised box connects with its keys folder
        producer = config.distributed.producer_bind
        remote = _worker(producer, box, "box-7")
        # Then it joins and gets work
        log.wait(lambda: any(e.name == "box-7" for e in log.of(WorkerJoined)), 120,
                 "box-7 joined")

        def box_worked() -> bool:
            return any(w.name == "box-7" and w.tasks_done > 0 for w in engine.status().workers)

        log.wait(box_worked, 120, "box-7 detected frames")

        # When a worker whose key nobody authorised connects, then it is refused (exit 11)
        # and never joins
        refused = _worker(producer, stranger, "stranger")
        out, err = refused.communicate(timeout=120)
        assert refused.returncode == 11, (out, err)
        assert not [e for e in log.of(WorkerJoined) if e.name == "stranger"]

        # When the box is stopped with SIGTERM, then it leaves cleanly (exit 0)
        remote.send_signal(signal.SIGTERM)
        out, err = remote.communicate(timeout=60)
        assert remote.returncode == 0, (out, err)
    finally:
        for proc in (remote, refused):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
        engine.stop(timeout=20)
    assert not engine_threads(), engine_threads()
