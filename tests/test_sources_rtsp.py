"""An RTSP camera that plays, goes away and comes back: a real RTSP server (GStreamer's, from
Debian's gir1.2-gst-rtsp-server-1.0, run by tests/rtsp_server.py under the system Python,
which has ``gi``) streaming JPEG over RTP, read by the stream source through OpenCV's FFmpeg.

Where the GStreamer RTSP server is not installed the test skips saying so, as the other
tests that need a system tool do; .ci/run installs it.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from mjpeg_server import free_port
from source_helpers import Recorder, no_leaked_threads, wait_for

from edgeapp.engine.sources import SourceState, StreamSource, open_source

S = SourceState
SERVER = Path(__file__).with_name("rtsp_server.py")
SYSTEM_PYTHON = "/usr/bin/python3"  # Debian's python3-gi is for the system interpreter
NEEDS = ("gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base gstreamer1.0-plugins-good "
         "python3-gi")


def _has_rtsp_server() -> bool:
    probe = ("import gi; gi.require_version('GstRtspServer', '1.0'); "
             "from gi.repository import Gst, GstRtspServer; Gst.init(None); "
             "assert Gst.ElementFactory.find('rtpjpegpay') and Gst.ElementFactory.find('jpegenc')")
    try:
        return subprocess.run([SYSTEM_PYTHON, "-c", probe], capture_output=True,
                              timeout=60).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


class RtspCamera:
    """tests/rtsp_server.py as a process on one port: start, kill (the camera goes away)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"rtsp://127.0.0.1:{self.port}/cam"
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> RtspCamera:
        self.proc = subprocess.Popen([SYSTEM_PYTHON, str(SERVER), str(self.port)],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line.strip() == "ready", (line, self.proc.stderr.read() if self.proc.stderr
                                         else "")
        return self

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.communicate()
            self.proc = None


@pytest.fixture(autouse=True)
def _no_leaked_threads() -> Iterator[None]:
    with no_leaked_threads():
        yield


@pytest.fixture
def camera() -> Iterator[RtspCamera]:
    if not _has_rtsp_server():
        pytest.skip(f"no GStreamer RTSP server for {SYSTEM_PYTHON}: apt-get install {NEEDS}")
    cam = RtspCamera().start()
    yield cam
    cam.kill()


@pytest.fixture
def run() -> Iterator[Recorder]:
    recorder = Recorder()
    yield recorder
    recorder.close()


def test_rtsp_camera_plays_goes_away_and_comes_back(run: Recorder, camera: RtspCamera) -> None:
    # Given a stream source on a live RTSP camera
    source = run(open_source(camera.url, stream_key="rtsp", backoff_initial=0.1,
                             backoff_max=0.5, open_timeout=5.0, read_timeout=2.0))
    assert isinstance(source, StreamSource)

    # Then it plays: RUNNING, decoded 320x240 frames in order, the camera's rate known
    wait_for(lambda: source.state is S.RUNNING, 30.0, "RUNNING")
    frames = [source.read(5.0) for _ in range(10)]
    assert all(f is not None and f.image.shape == (240, 320, 3) for f in frames), frames
    seqs = [f.seq for f in frames if f is not None]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs), seqs
    assert source.source_fps == pytest.approx(10.0, abs=0.5)

    # When the camera goes away, then the source says so and keeps trying
    camera.kill()
    wait_for(lambda: source.state is S.RECONNECTING, 30.0, "RECONNECTING")
    assert str(camera.port) in source.state_reason, source.state_reason

    # When it comes back on the same address, then frames flow again
    camera.start()
    wait_for(lambda: source.state is S.RUNNING, 30.0, "RUNNING again")
    back = source.frames_in
    later = [source.read(5.0) for _ in range(15)]
    assert all(f is not None for f in later), "frames keep coming after the reconnect"
    assert later[-1] is not None and later[-1].seq >= back, (back, [f.seq for f in later if f])
    source.stop()
    assert source.join(10.0)
    assert run.path(source) == [S.CONNECTING, S.RUNNING, S.RECONNECTING, S.RUNNING, S.ENDED]
