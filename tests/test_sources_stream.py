"""Network sources against a real local MJPEG server, dead URLs and a silent server."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest
from mjpeg_server import MjpegServer, free_port
from source_helpers import Recorder, no_leaked_threads, wait_for

from edgeapp.engine.sources import SourceState, StreamSource, open_source

S = SourceState


@pytest.fixture(autouse=True)
def _no_leaked_threads() -> Iterator[None]:
    with no_leaked_threads():
        yield


@pytest.fixture
def run() -> Iterator[Recorder]:
    recorder = Recorder()
    yield recorder
    recorder.close()


@pytest.fixture
def mjpeg() -> Iterator[MjpegServer]:
    server = MjpegServer(fps=15).start()
    yield server
    server.stop()


def test_stream_reconnects_when_the_server_comes_back(run: Recorder, mjpeg: MjpegServer) -> None:
    source = run(open_source(mjpeg.url, stream_key="net", backoff_initial=0.1, backoff_max=0.4,
                             open_timeout=2.0, read_timeout=2.0))
    # Given a running stream
    wait_for(lambda: source.state is S.RUNNING, 10.0, "RUNNING")
    before = source.read(3.0)
    assert before is not None and before.image.shape == (120, 160, 3)
    # When the server goes away, then RECONNECTING (and it keeps trying while it is away)
    mjpeg.stop()
    wait_for(lambda: source.state is S.RECONNECTING, 10.0, "RECONNECTING")
    time.sleep(0.6)
    assert source.state is S.RECONNECTING
    # When it comes back on the same port, then RUNNING again with new frames flowing
    mjpeg.start()
    wait_for(lambda: source.state is S.RUNNING, 10.0, "RUNNING again")
    seq_back = source.frames_in
    after = [source.read(3.0) for _ in range(5)]
    assert all(f is not None and f.seq >= seq_back - 2 for f in after)
    assert run.path(source) == [S.CONNECTING, S.RUNNING, S.RECONNECTING, S.RUNNING]
    assert isinstance(source, StreamSource) and source.source_fps is not None


def test_frozen_stream_times_out_and_recovers(run: Recorder, mjpeg: MjpegServer) -> None:
    source = run(StreamSource(mjpeg.url, stream_key="frozen", open_timeout=1.0,
                              read_timeout=0.5, backoff_initial=0.1, backoff_max=0.3))
    wait_for(lambda: source.state is S.RUNNING, 10.0, "RUNNING")
    # When the camera hangs with the connection still open, the read timeout notices
    mjpeg.freeze()
    wait_for(lambda: source.state is S.RECONNECTING, 10.0, "RECONNECTING after a stall")
    # Reconnects meet a camera that answers but sends nothing: the open timeout bounds them
    time.sleep(1.5)
    assert source.state is S.RECONNECTING
    mjpeg.freeze(False)
    wait_for(lambda: source.state is S.RUNNING, 10.0, "RUNNING after the camera resumed")
    assert source.read(3.0) is not None


@pytest.mark.parametrize("scheme", ["http", "rtsp"])
def test_unreachable_url_retries_and_stops_promptly(run: Recorder, scheme: str) -> None:
    url = f"{scheme}://127.0.0.1:{free_port()}/x"
    source = run(open_source(url, stream_key="dead", backoff_initial=0.05, backoff_max=0.2))
    wait_for(lambda: source.state is S.RECONNECTING, 5.0, "RECONNECTING")
    time.sleep(0.5)  # several attempts with backoff; none may crash or give up
    assert source.state is S.RECONNECTING and "127.0.0.1" in source.state_reason
    source.stop()
    assert source.join(10.0), "stop() ends a source that is waiting to reconnect"
    assert source.state is S.ENDED and source.frames_in == 0


def test_silent_server_is_bounded_by_the_open_timeout(run: Recorder) -> None:
    # A server that accepts connections and never answers: OpenCV would wait in open().
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/stream.mjpg"
        source = run(StreamSource(url, stream_key="mute", open_timeout=0.5, read_timeout=0.5))
        # start() returned before the open gave up (that takes open_timeout): it did not wait
        assert source.state is S.CONNECTING, "start() must not wait for the device"
        wait_for(lambda: source.state is S.RECONNECTING, 5.0, "RECONNECTING")
        source.stop()
        assert source.join(10.0), "the source thread outlived open_timeout after stop()"


def test_reconnect_limit_makes_it_offline(run: Recorder) -> None:
    source = run(open_source(f"http://user:secret@127.0.0.1:{free_port()}/x", stream_key="lim",
                             max_reconnects=2, backoff_initial=0.01))
    assert source.join(5.0) and source.state is S.OFFLINE
    assert run.path(source) == [S.CONNECTING, S.RECONNECTING, S.OFFLINE]
    assert "secret" not in source.state_reason, "credentials never reach the UI"
