"""Keys, as a user meets them: handshake failures that say what to check, key files that are
not keys, a worker that waits and says so, and revocation while the engine runs."""

from __future__ import annotations

import shutil

import pytest
import zmq
import zmq.auth
from distributed_helpers import pipeline, wait_until

from edgeapp.cli import main as cli_main
from edgeapp.engine.distributed import keys
from edgeapp.engine.distributed.worker import Worker, WorkerExit
from edgeapp.errors import ConfigError


@pytest.fixture
def key_root(tmp_path):
    root = tmp_path / "keys"
    keys.init_server(root)
    return root


def _refusal(pipe, *args: str) -> tuple[int, str]:
    proc = pipe.spawn_worker(*args, cli=True)
    code = proc.wait(30)
    return code, proc.stderr.read().decode()


def test_handshake_failures_say_what_to_check_with_exit_11(key_root, tmp_path) -> None:
    wrong = tmp_path / "wrong-server"  # a real worker keypair, but another engine's server key
    shutil.copytree(keys.add_worker(key_root, "box"), wrong)
    other = tmp_path / "other-keys"
    keys.init_server(other)
    shutil.copy(other / "server.key", wrong / "server.key")
    secured = {"keys_dir": key_root}
    with pipeline(producer=secured, collector=secured) as pipe:
        code, err = _refusal(pipe)  # no keys at all
        assert code == WorkerExit.AUTH == 11, err
        assert "requires CURVE keys" in err and "--keys" in err, err
        code, err = _refusal(pipe, "--keys", str(wrong))
        assert code == WorkerExit.AUTH, err
        assert "server.key" in err and "not that engine's key" in err, err
        assert pipe.producer.status()["workers"] == []
    with pipeline() as plain:  # keys against a Producer without CURVE
        code, err = _refusal(plain, "--keys", str(key_root / "workers" / "box"))
        assert code == WorkerExit.AUTH and "start the worker without --keys" in err, err


def test_key_files_that_are_not_keys_exit_2_naming_the_file(key_root, tmp_path, capsys) -> None:
    folder = tmp_path / "box"
    shutil.copytree(keys.add_worker(key_root, "box"), folder)
    (folder / "worker.key_secret").write_text("this is not a key\n")
    argv = ["--worker", "--connect", "tcp://127.0.0.1:9", "--keys", str(folder)]
    assert cli_main(argv) == ConfigError.exit_code == 2
    err = capsys.readouterr().err
    assert str(folder / "worker.key_secret") in err and "not a CURVE key file" in err, err
    (folder / "worker.key_secret").write_text('public-key = "short"\nsecret-key = "short"\n')
    assert cli_main(argv) == 2
    assert "40-character" in capsys.readouterr().err
    assert cli_main([*argv[:-1], str(tmp_path / "nowhere")]) == 2
    assert "no such folder" in capsys.readouterr().err
    (key_root / "authorized" / "junk.key").write_text("junk")
    with pytest.raises(ConfigError, match="junk.key"):
        keys.load_server_keys(key_root)


def test_a_worker_waiting_for_a_producer_says_so_now_and_then() -> None:
    with zmq.Context() as ctx, ctx.socket(zmq.ROUTER) as nobody:
        port = nobody.bind_to_random_port("tcp://127.0.0.1")
        nobody.close(0)
        lines: list[str] = []
        worker = Worker(f"tcp://127.0.0.1:{port}", processor_factory="noop",
                        request_timeout_s=0.2, notice=lines.append, notice_every_s=0.3)
        worker.start()
        try:
            wait_until(lambda: len(lines) >= 2, 10, "two lines while waiting")
        finally:
            worker.stop(drain=False)
            assert worker.join(5)
        assert all("no Producer has answered" in line and str(port) in line for line in lines)


def test_revoking_a_key_applies_while_the_engine_runs(key_root, tmp_path) -> None:
    secured = {"keys_dir": key_root}
    events: list = []
    with pipeline(producer=secured, collector=secured) as pipe:
        pipe.producer.on_event = events.append
        # Given two authorised workers, one of them added after the engine started
        stays = pipe.add_worker(keys_dir=keys.add_worker(key_root, "stays"), name="stays")
        kept = tmp_path / "goes-copy"  # what the revoked box still has on its disk
        shutil.copytree(keys.add_worker(key_root, "goes"), kept)
        goes = pipe.add_worker(keys_dir=kept, name="goes")
        wait_until(lambda: len(pipe.producer.status()["workers"]) == 2, 10, "both registered")
        pipe.submit_all(["s"], range(20))
        wait_until(lambda: pipe.received.count() >= 20, 10, "frames before the revocation")

        # When one is revoked
        assert keys.revoke_worker(key_root, "goes")

        # Then it is dropped and leaves with exit 11, and it cannot come back
        assert goes.join(10) and goes.exit_code == WorkerExit.AUTH, goes.error
        assert "revoked" in (goes.error or "") or "refused" in (goes.error or ""), goes.error
        pipe.workers.remove(goes)
        assert [w["name"] for w in pipe.producer.status()["workers"]] == ["stays"]
        assert any(getattr(e, "reason", None) == "revoked" for e in events), events
        again = pipe.add_worker(keys_dir=kept, name="goes-again", request_timeout_s=2.0)
        assert again.join(10) and again.exit_code == WorkerExit.AUTH
        assert "refused this worker's key" in (again.error or ""), again.error
        pipe.workers.remove(again)
        pipe.submit_all(["s"], range(20, 40))
        wait_until(lambda: pipe.received.count() >= 40, 10, "frames after it, all by 'stays'")
        assert pipe.received.by_stream["s"] == list(range(40))
        assert stays.exit_code is None
