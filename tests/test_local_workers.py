"""Local worker processes: started, fed, reported when they die, restarted, stopped."""

from __future__ import annotations

import os
import signal

from distributed_helpers import pipeline, wait_until

from edgeapp.engine.distributed.local_workers import LOCAL_WORKER_NICE, LocalWorkers


def test_local_workers_process_frames_report_death_and_restart(tmp_path):
    with pipeline() as pipe:
        workers = LocalWorkers(2, pipe.producer.address, log_dir=tmp_path,
                               extra_args=["--processor", "noop", "--request-timeout", "1"])
        try:
            workers.start()
            wait_until(lambda: len(pipe.producer.status()["workers"]) == 2, 30,
                       "both local workers registered")
            pipe.submit_all(["cam"], range(20))
            wait_until(lambda: pipe.received.count() == 20, 30, "all frames came back")
            assert pipe.received.by_stream["cam"] == list(range(20))
            # they run at a lower priority than the engine, which they yield the CPU to
            ours = os.getpriority(os.PRIO_PROCESS, 0)
            assert {os.getpriority(os.PRIO_PROCESS, pid) for pid in workers.pids().values()} \
                == {min(19, ours + LOCAL_WORKER_NICE)}

            victim = workers.pids()[0]
            os.kill(victim, signal.SIGKILL)
            wait_until(lambda: workers.alive() == 1, 10, "the killed worker is seen as dead")
            (ended,) = workers.poll()
            assert (ended.index, ended.pid, ended.returncode) == (0, victim, -signal.SIGKILL)
            assert workers.poll() == []  # reported once

            assert workers.restart(0) != victim
            assert workers.alive() == 2
            assert workers.log_path(1).exists()
        finally:
            workers.stop(timeout=10)
        assert workers.alive() == 0


def test_worker_that_cannot_start_is_reported_with_its_log(tmp_path):
    workers = LocalWorkers(1, "not-an-endpoint", log_dir=tmp_path)
    workers.start()
    wait_until(lambda: workers.alive() == 0, 30, "the worker gave up")
    (ended,) = workers.poll()
    assert ended.returncode != 0
    assert ended.stderr_tail  # the worker said why
    workers.stop()


def test_bad_endpoint_is_one_line_and_exit_2():
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "edgeapp.commands.worker_cmd", "--connect",
                           "not-an-endpoint"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("edgeapp worker: --connect: expected an endpoint like "
                                   "tcp://HOST:5555, got 'not-an-endpoint'")


def test_bad_nice_is_one_line_and_exit_2():
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "edgeapp.commands.worker_cmd", "--connect",
                           "tcp://127.0.0.1:5555", "--nice", "30"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "edgeapp worker: --nice: expected 0 to 19, got 30"


def test_local_sizing_shares_the_cores_and_wins_over_the_producer():
    import argparse

    from edgeapp.commands.worker_cmd import _with_local_sizing
    from edgeapp.engine.distributed.local_workers import sizing_args

    assert sizing_args(2, cores=2) == ["--inference-threads", "1", "--inference-streams", "1",
                                       "--cpu-pinning", "off"]
    assert sizing_args(1, cores=8)[1] == "8" and sizing_args(1, cores=8)[-1] == "on"
    seen = []
    args = argparse.Namespace(inference_threads=1, inference_streams=None, cpu_pinning="off")
    factory = _with_local_sizing(lambda conf: seen.append(dict(conf)), args)
    factory({"work_type": "YOLO_DETECTION", "inference_threads": 4})
    assert seen == [{"work_type": "YOLO_DETECTION", "inference_threads": 1,
                     "cpu_pinning": False}]


def test_local_workers_leave_when_the_engine_process_is_killed(tmp_path):
    import subprocess
    import sys

    # Given a process that starts a local worker (the engine's way) and is then killed -9
    parent = subprocess.Popen([sys.executable, "-c", (
        "import sys, time\n"
        "from edgeapp.engine.distributed.local_workers import LocalWorkers\n"
        f"w = LocalWorkers(1, 'tcp://127.0.0.1:9', log_dir={str(tmp_path)!r},\n"
        "                  extra_args=['--processor', 'noop'])\n"
        "w.start()\n"
        "print(w.pids()[0], flush=True)\n"
        "time.sleep(120)\n")], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    worker_pid = int(parent.stdout.readline())
    parent.kill()
    parent.wait(10)

    # Then the orphaned worker notices and leaves on its own (no Producer ever answered it)
    def gone() -> bool:
        try:
            os.kill(worker_pid, 0)
        except ProcessLookupError:
            return True
        with open(f"/proc/{worker_pid}/stat") as f:  # a zombie waiting for init counts
            return f.read().split(")")[1].split()[0] == "Z"
    wait_until(gone, 30, "the orphaned worker left")
    assert "engine that started this worker is gone" in (tmp_path / "local-0.log").read_text()
