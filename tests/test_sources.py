"""Camera sources on real parts: state machine, video files, synthetic camera, factory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from source_helpers import Recorder, drain, no_leaked_threads, wait_for

from edgeapp.engine.sources import (
    FileSource,
    Frame,
    FrameQueue,
    Source,
    SourceState,
    StateMachine,
    StreamSource,
    SyntheticSource,
    UsbSource,
    open_source,
    probe_video,
)
from edgeapp.errors import SourceError

S = SourceState


def bars(index: int, width: int = 320, height: int = 240) -> np.ndarray:
    """A frame whose 8 vertical bars spell ``index`` in binary (survives mp4v and resizing)."""
    image = np.zeros((height, width, 3), np.uint8)
    for k in range(8):
        if index >> k & 1:
            image[:, k * width // 8:(k + 1) * width // 8] = 255
    return image


def read_bars(image: np.ndarray) -> int:
    """The index ``bars`` wrote into ``image``."""
    w = image.shape[1] // 8
    middles = (image[:, k * w + w // 4:(k + 1) * w - w // 4] for k in range(8))
    return sum(1 << k for k, bar in enumerate(middles) if bar.mean() > 127)


def make_clip(path: Path, frames: int, fps: float = 30.0) -> Path:
    """Write a 320x240 mp4v clip of ``bars`` frames."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), fps, (320, 240))
    assert writer.isOpened()
    for i in range(frames):
        writer.write(bars(i))
    writer.release()
    return path


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 s at 30 fps."""
    return make_clip(tmp_path_factory.mktemp("clips") / "clip.mp4", 90)


@pytest.fixture(autouse=True)
def _no_leaked_threads() -> Iterator[None]:
    with no_leaked_threads():
        yield


@pytest.fixture
def run() -> Iterator[Recorder]:
    recorder = Recorder()
    yield recorder
    recorder.close()


# -- state machine ---------------------------------------------------------------------
def test_state_machine_allows_the_table_and_refuses_the_rest() -> None:
    machine, seen = StateMachine("cam"), []
    machine.subscribe(lambda old, new, why: seen.append((old, new, why)))
    machine.subscribe(lambda *_: 1 / 0)  # a broken watcher must not break the camera
    for new in (S.RUNNING, S.RECONNECTING, S.RUNNING, S.ENDED):
        machine.transition(new, f"to {new.name}")
    assert [n for _, n, _ in seen] == [S.RUNNING, S.RECONNECTING, S.RUNNING, S.ENDED]
    assert seen[1] == (S.RUNNING, S.RECONNECTING, "to RECONNECTING")
    assert machine.final and machine.reason == "to ENDED"
    with pytest.raises(SourceError, match="ENDED -> RUNNING"):
        machine.transition(S.RUNNING, "again")
    with pytest.raises(SourceError, match="CONNECTING -> CONNECTING"):
        StateMachine("x").transition(S.CONNECTING, "same")
    offline = StateMachine("y")
    offline.transition(S.OFFLINE, "gone")
    with pytest.raises(SourceError):
        offline.transition(S.RECONNECTING, "retry")


def test_frame_queue_drops_the_oldest_and_ends_with_none() -> None:
    queue = FrameQueue(2)
    frames = [Frame("k", i, float(i), np.zeros((2, 2, 3), np.uint8)) for i in range(3)]
    assert [queue.put(f) for f in frames] == [False, False, True]
    queue.close()
    assert [queue.get(0.1).seq, queue.get(0.1).seq, queue.get(5.0)] == [1, 2, None]


# -- video files -----------------------------------------------------------------------
def test_file_plays_in_real_time_at_the_target_fps(run: Recorder, clip: Path) -> None:
    # Given a 3 s, 30 fps clip played at 10 fps
    source = run(open_source(str(clip), stream_key="counter-1", target_fps=10, queue_size=64))
    frames = drain(source, timeout=10.0)  # a read waits up to 10 s: a busy machine stalls
    # Then every 3rd source frame comes out, in order, none dropped, and it ends
    assert [f.seq for f in frames] == list(range(0, 90, 3))
    assert source.dropped == 0
    assert all(read_bars(f.image) == f.seq for f in frames), "seq is the source frame index"
    assert {f.stream_key for f in frames} == {"counter-1"}
    assert all(b.capture_ts > a.capture_ts for a, b in zip(frames, frames[1:], strict=False))
    assert frames[0].image.shape == (240, 320, 3) and source.size == (320, 240)
    assert source.join(10.0) and run.path(source) == [S.CONNECTING, S.RUNNING, S.ENDED]
    assert (source.frames_in, source.frames_out, source.source_fps) == (90, len(frames), 30.0)
    assert source.last_frame_ts == frames[-1].capture_ts


def test_scale_and_set_target_while_running(run: Recorder, clip: Path) -> None:
    source = run(FileSource(clip, stream_key="cam", target_fps=10, scale=0.5, queue_size=64))
    first = [source.read(3.0) for _ in range(5)]
    source.set_target(fps=5, scale=0.75)
    later = drain(source)
    assert all(f is not None and f.image.shape == (120, 160, 3) for f in first)
    assert later[-1].image.shape == (180, 240, 3), "new scale applies while running"
    tail = [f.seq for f in later[-6:]]
    assert np.diff(tail).tolist() == [6] * 5, f"5 fps of 30 is every 6th frame, got {tail}"
    assert all(read_bars(f.image) == f.seq for f in later)


def test_loop_keeps_running_past_the_end(run: Recorder, tmp_path: Path) -> None:
    short = make_clip(tmp_path / "short.mp4", 15)  # 0.5 s
    source = run(open_source(str(short), stream_key="loop", loop=True, queue_size=4))
    wait_for(lambda: source.frames_in > 40, 6.0, "three passes through the clip")
    assert source.state is S.RUNNING
    frames = [source.read(2.0) for _ in range(4)]
    seqs = [f.seq for f in frames if f is not None]
    assert len(seqs) == 4 and seqs == sorted(seqs) and seqs[-1] > 15, "seq keeps counting"
    assert all(read_bars(f.image) == f.seq % 15 for f in frames if f is not None)
    assert source.dropped > 0, "nobody read for a while: the small queue dropped old frames"
    source.stop()
    assert source.join(10.0) and source.state is S.ENDED and source.state_reason == "stopped"


@pytest.mark.parametrize("kind", ["missing", "corrupt", "directory"])
def test_unreadable_file_goes_offline_with_its_name(
    run: Recorder, tmp_path: Path, kind: str
) -> None:
    path = tmp_path / "x.mp4"
    if kind == "corrupt":
        path.write_bytes(np.random.default_rng(0).integers(0, 256, 50_000, np.uint8).tobytes())
    elif kind == "directory":
        path.mkdir()
    source = run(open_source(str(path), stream_key="bad"))
    assert source.join(10.0), "a bad file must not hang the source"
    assert source.state is S.OFFLINE and str(path) in source.state_reason
    assert source.read(0.1) is None and source.frames_out == 0
    with pytest.raises(SourceError, match="x.mp4"):
        probe_video(path)


def test_probe_reads_a_good_file(clip: Path) -> None:
    info = probe_video(clip)
    assert (info.fps, info.width, info.height, info.frames) == (30.0, 320, 240, 90)


def test_callback_mode_and_a_failing_callback(run: Recorder, tmp_path: Path) -> None:
    got: list[int] = []

    def callback(frame: Frame) -> None:
        got.append(frame.seq)
        if frame.seq == 3:
            raise RuntimeError("consumer bug")  # must not stop the camera

    source = run(FileSource(make_clip(tmp_path / "c.mp4", 10), stream_key="cb",
                            callback=callback))
    assert source.join(10.0) and source.state is S.ENDED
    assert got == list(range(10)) and source.read(0.1) is None


# -- synthetic camera and factory ------------------------------------------------------
def test_synthetic_camera_is_paced_and_skips_without_rendering(run: Recorder) -> None:
    renders = []

    class Counting(SyntheticSource):
        def _retrieve(self):  # type: ignore[no-untyped-def]
            renders.append(1)
            return super()._retrieve()

    source = run(Counting(stream_key="syn", width=640, height=360, fps=15, target_fps=5,
                          scale=0.5, queue_size=64))
    wait_for(lambda: source.frames_out >= 6, 10.0, "6 frames")
    source.stop()
    assert source.join(10.0)
    frames = drain(source, 0.1)
    assert [f.seq for f in frames] == list(range(0, 3 * len(frames), 3))
    assert all(f.truth.frame_index == f.seq for f in frames), "truth belongs to its frame"
    assert frames[0].image.shape == (180, 320, 3) and len(renders) == source.frames_out
    assert source.scene is not None and source.scene.frame_index == source.frames_in
    boxes = np.concatenate([f.truth.boxes for f in frames])
    assert boxes.size and boxes[:, 2].max() <= 320 and boxes[:, 3].max() <= 180, "truth scaled"


def test_factory_maps_specs_and_refuses_unknown(tmp_path: Path) -> None:
    assert isinstance(open_source("synthetic", stream_key="a"), SyntheticSource)
    assert isinstance(open_source(str(tmp_path / "v.mp4"), stream_key="b"), FileSource)
    assert isinstance(open_source(f"file://{tmp_path}/v.mp4", stream_key="b"), FileSource)
    for url in ("rtsp://h/x", "rtsps://h/x", "http://h/x", "HTTPS://h/x"):
        assert isinstance(open_source(url, stream_key="c"), StreamSource)
    usb = open_source("usb:3", stream_key="d", width=640, height=480)
    assert isinstance(usb, UsbSource) and usb.index == 3
    for bad in ("ftp://host/x", "usb:abc", "", "  "):
        with pytest.raises(SourceError, match="unknown source"):
            open_source(bad, stream_key="e")


def test_missing_usb_camera_goes_offline_without_retry_limit_hang(run: Recorder) -> None:
    source = run(open_source("usb:63", stream_key="usb", max_reconnects=0))
    assert source.join(10.0) and source.state is S.OFFLINE and "63" in source.state_reason


def test_a_bug_in_a_source_becomes_offline_not_a_dead_thread(run: Recorder) -> None:
    class Broken(Source):
        live = True

        def _open(self) -> tuple[float, int, int]:
            return 10.0, 4, 4

        def _grab(self) -> bool:
            raise KeyError("bug")

    source = run(Broken("broken"))
    assert source.join(10.0) and source.state is S.OFFLINE and "bug" in source.state_reason
    with pytest.raises(SourceError, match="already started"):
        source.start()
