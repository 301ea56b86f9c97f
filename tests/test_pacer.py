"""Pacer: exact frame skipping on the source clock, even-sized downscaling, live changes."""

from __future__ import annotations

import random
import threading

import numpy as np
import pytest

from edgeapp.engine.sources.pacer import Pacer, even_size
from edgeapp.errors import InputError


def taken(pacer: Pacer, source_fps: float, frames: int, start: int = 0) -> list[int]:
    """Indices of the frames ``pacer`` takes from a ``source_fps`` stream."""
    return [i for i in range(start, start + frames) if pacer.take(i / source_fps)]


def test_15_to_5_fps_takes_exactly_every_third_frame() -> None:
    assert taken(Pacer(fps=5), 15, 3000) == list(range(0, 3000, 3))


def test_15_to_10_fps_takes_two_of_every_three_frames() -> None:
    got = taken(Pacer(fps=10), 15, 3000)
    assert len(got) == 2000
    for block in range(0, 3000, 3):
        assert sum(1 for i in got if block <= i < block + 3) == 2, f"block at frame {block}"


def test_ntsc_rate_does_not_drift_over_an_hour() -> None:
    # 29.97 -> 10 fps cannot be "every k-th frame"; the kept rate must still be exact.
    source = 30000 / 1001
    frames = int(3600 * source)
    got = taken(Pacer(fps=10), source, frames)
    assert abs(len(got) - 10 * frames / source) <= 1
    gaps = set(np.diff(got).tolist())
    assert gaps <= {2, 3}, f"only gaps of 2 or 3 frames expected, got {gaps}"


def test_no_target_or_faster_target_keeps_every_frame() -> None:
    assert taken(Pacer(), 15, 100) == list(range(100))
    assert taken(Pacer(fps=30), 15, 100) == list(range(100))
    assert taken(Pacer(fps=15), 15, 100) == list(range(100))


def test_set_target_changes_the_rate_from_the_next_frame() -> None:
    pacer = Pacer(fps=5)
    first = taken(pacer, 15, 30)
    pacer.set_target(fps=15)
    second = taken(pacer, 15, 30, start=30)
    pacer.set_target(fps=None)
    third = taken(pacer, 15, 30, start=60)
    assert len(first) == 10 and len(second) == 30 and len(third) == 30


def test_set_target_keep_leaves_the_other_value_alone() -> None:
    pacer = Pacer(fps=5, scale=0.5)
    pacer.set_target(scale=0.75)
    assert (pacer.fps, pacer.scale) == (5, 0.75)
    pacer.set_target(fps=None)
    assert (pacer.fps, pacer.scale) == (None, 0.75)


def test_live_clock_with_jitter_keeps_the_target_rate() -> None:
    # Given a camera that delivers ~25 fps with jittery arrival times
    rng = random.Random(1)
    pacer, t, count = Pacer(fps=10), 0.0, 0
    for _ in range(2500):  # 100 s
        t += 0.04 * rng.uniform(0.7, 1.3)
        count += pacer.take(t)
    # Then about 10 fps come out
    assert abs(count / t - 10) < 0.2


def test_a_stall_does_not_cause_a_burst() -> None:
    pacer = Pacer(fps=5)
    assert taken(pacer, 15, 15) == [0, 3, 6, 9, 12]
    # The camera freezes for 10 s, then runs on: at most one extra frame, then the rate.
    after = [i for i in range(15, 45) if pacer.take(10.0 + i / 15)]
    assert after == [15, 16, *range(18, 45, 3)]


def test_even_size_rounds_down_to_even_and_never_upscales() -> None:
    assert even_size(1280, 720, 0.75) == (960, 540)
    assert even_size(1280, 720, 0.5) == (640, 360)
    assert even_size(320, 240, 0.5) == (160, 120)
    w, h = even_size(333, 199, 0.5)
    assert w % 2 == 0 and h % 2 == 0 and abs(w - 166.5) <= 1.5 and abs(h - 99.5) <= 1.5
    assert even_size(333, 199, 1.0) == (333, 199)


def test_resize_uses_the_current_scale() -> None:
    pacer = Pacer(scale=1.0)
    image = np.zeros((240, 320, 3), np.uint8)
    assert pacer.resize(image) is image
    pacer.set_target(scale=0.5)
    out = pacer.resize(image)
    assert out.shape == (120, 160, 3) and out.dtype == np.uint8


@pytest.mark.parametrize("fps", [0, -1, float("nan"), float("inf")])
def test_bad_target_fps_is_refused(fps: float) -> None:
    with pytest.raises(InputError, match="fps"):
        Pacer(fps=fps)


@pytest.mark.parametrize("scale", [0, -0.5, 1.5, float("nan")])
def test_bad_scale_is_refused(scale: float) -> None:
    with pytest.raises(InputError, match="scale"):
        Pacer().set_target(scale=scale)


def test_set_target_from_another_thread_is_safe() -> None:
    pacer, errors = Pacer(fps=5), []

    def flip() -> None:
        try:
            for k in range(2000):
                pacer.set_target(fps=5 if k % 2 else 10, scale=0.5 if k % 2 else 1.0)
        except Exception as exc:  # pragma: no cover - the assert below reports it
            errors.append(exc)

    thread = threading.Thread(target=flip)
    thread.start()
    got = taken(pacer, 15, 20000)
    thread.join(10)
    assert not errors and 0 < len(got) < 20000
