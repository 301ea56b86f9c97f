"""``edgeapp --headless`` tells the operator why: a missing video file, a camera URL that does
not answer, a VLM server that is down and a killed station each get a line of their own above
the status line, the summary lists what went wrong, and FFmpeg's and OpenCV's own messages go
to the station's log file, not to the terminal."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import yaml
from engine_helpers import short_dir
from mjpeg_server import MjpegServer, free_port

ROOT = Path(__file__).resolve().parents[1]


def _station_processes(pid: int) -> list[psutil.Process]:
    """The engine's station processes (spawned by multiprocessing; workers are ``--worker``)."""
    return [p for p in psutil.Process(pid).children(recursive=True)
            if "spawn_main" in " ".join(p.cmdline())]


def test_headless_prints_why_things_fail_and_keeps_library_noise_in_the_log_file():
    # Given a synthetic station whose orders go to a VLM server nobody runs, a station on a
    # video file that is not there, and one on an MJPEG server's address that answers 404
    root = short_dir()
    camera = MjpegServer(fps=5).start()
    missing = root / "missing.mp4"
    wrong_url = f"http://127.0.0.1:{camera.port}/nothing.mjpg"
    config = root / "edgeapp.yaml"
    config.write_text(yaml.safe_dump({
        "data_dir": str(root / "data"),
        "stations": [{"name": "cam", "seed": 4}, {"name": "file", "source": str(missing)},
                     {"name": "net", "source": wrong_url}],
        "vlm": {"backend": "openai", "url": f"http://127.0.0.1:{free_port()}", "timeout_s": 3},
        "controller": {"kind": "static"},
        "distributed": {"producer_bind": f"ipc://{root}/p.sock",
                        "collector_bind": f"ipc://{root}/c.sock", "local_workers": 1},
    }))
    proc = subprocess.Popen(
        [sys.executable, "-m", "edgeapp", "--config", str(config), "--headless"],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")),
                              daemon=True)
    reader.start()

    def wait_for(pattern: str, timeout: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(lines):
                if found := re.search(pattern, line):
                    return found
            time.sleep(0.2)
        raise AssertionError(f"no line matching {pattern!r} in {timeout} s: {lines[-20:]}")

    killed = ""
    try:
        # When two orders have failed for want of the VLM
        wait_for(r"orders \d+ \(failed ([2-9]|\d\d)", 180)
        # And a station process is killed
        victim = _station_processes(proc.pid)[0]
        victim.kill()
        killed = wait_for(r"ERROR\s+(\w+): station \w+ crashed", 60).group(1)
        # And the run is stopped
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)
        reader.join(10)
        err = proc.stderr.read()
    finally:
        proc.kill()
        proc.wait()
        camera.stop()

    # Then each reason was a line of its own, with severity, part and what is wrong
    out = "".join(lines)
    assert re.search(rf"ERROR\s+file: camera offline: video file not found: {missing}", out), out
    assert re.search(rf"WARNING\s+net: camera lost, reconnecting: .*{re.escape(wrong_url)}",
                     out), out
    vlm = [line for line in lines if re.search(r"ERROR\s+vlm: VLM server unreachable", line)]
    assert len(vlm) == 1, f"told once, not per order: {vlm}"
    assert killed in ("cam", "file", "net")
    # And the summary lists the failed orders by reason and the stations that went wrong
    assert re.search(r"failed: server unreachable [2-9]", out), out
    stations = next(line for line in lines if line.startswith("stations: "))
    assert f"{killed} crashed" in stations and "file camera offline" in stations, stations
    # And FFmpeg's and OpenCV's messages are in the station's log file, not on the terminal
    for text in (out, err):
        assert "[ WARN" not in text and " @ 0x" not in text, text
    log = (root / "data" / "logs" / "station-net.log").read_text()
    assert "VIDEOIO" in log or "[ WARN" in log, log
    assert proc.returncode == 130, err
