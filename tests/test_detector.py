"""The OpenVINO detector on the shipped demo model, its post-processing, grades and bad input."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import cv2
import numpy as np
import openvino  # noqa: F401 - imported up front: its telemetry starts a lasting idle thread
import pytest
import yaml

from edgeapp import paths
from edgeapp.engine.bench.detector import held_out_frames
from edgeapp.engine.distributed.processor import Processor
from edgeapp.engine.vision import postprocess as pp
from edgeapp.engine.vision.detector import Detector
from edgeapp.engine.vision.grades import Grade, LoadingMode
from edgeapp.engine.vision.models import ModelInfo, discover, resolve_grades
from edgeapp.engine.vision.processor import DetectorProcessor, make_processor
from edgeapp.errors import InputError, ModelError
from edgeapp.training.verify import match, truth_array

SHIPPED_N = paths.shipped_models_dir() / "yolo11n-demo"
TICKET = 12  # the catalogue's classes: 12 items, then the ticket


# --- fixtures --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def samples() -> list[tuple[np.ndarray, np.ndarray]]:
    """24 held-out 1280x720 frames (seeds training never saw) with their truth as (N, 6)."""
    return [(image, truth_array(t)) for image, t in held_out_frames(24, seed=40100)]


@pytest.fixture(scope="module")
def detector():
    with Detector(SHIPPED_N) as d:
        yield d


def fake_ir(folder: Path, out_channels: int, *, detector_head: bool = True,
            classes: int = 13) -> Path:
    """A tiny IR built with openvino itself: a 'detector' whose head finds nothing, or (with
    ``detector_head=False``) a classifier-shaped ``(1, out_channels)`` output."""
    import openvino as ov
    from openvino import opset13 as ops

    folder.mkdir(parents=True)
    x = ops.parameter([1, 3, -1, -1], ov.Type.f32, name="images")
    pooled = ops.avg_pool(x, [8, 8], [0, 0], [0, 0], [8, 8], True)
    conv = ops.convolution(pooled, ops.constant(np.zeros((out_channels, 3, 1, 1), np.float32)),
                           [1, 1], [0, 0], [0, 0], [1, 1])
    if detector_head:
        out = ops.reshape(conv, ops.constant(np.array([1, out_channels, -1], np.int64)), False)
    else:
        out = ops.reduce_mean(conv, ops.constant(np.array([2, 3], np.int64)), False)
    ov.save_model(ov.Model([out], [x], "fake"), str(folder / f"{folder.name}.xml"))
    meta = {"task": "detect", "imgsz": [320, 320], "names": {i: f"c{i}" for i in range(classes)}}
    (folder / "metadata.yaml").write_text(yaml.safe_dump(meta))
    return folder


def recall_precision(dets: list[np.ndarray], truths: list[np.ndarray],
                     same_class: bool = True) -> tuple[float, float, list[float]]:
    pairs = [match(d, t, same_class=same_class) for d, t in zip(dets, truths, strict=True)]
    tp = sum(len(p) for p in pairs)
    ious = [iou for p in pairs for _, _, iou in p]
    return (tp / max(1, sum(len(t) for t in truths)), tp / max(1, sum(len(d) for d in dets)),
            ious)


# --- post-processing (no model needed) -------------------------------------------------------
def reference_nms(boxes: np.ndarray, scores: np.ndarray, thr: float) -> list[int]:
    """The textbook greedy NMS, one box at a time."""
    order = sorted(range(len(boxes)), key=lambda i: -scores[i])
    keep: list[int] = []
    for i in order:
        if all(pp.box_iou(boxes[i:i + 1], boxes[k:k + 1])[0, 0] <= thr for k in keep):
            keep.append(i)
    return keep


def random_boxes(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    xy = rng.uniform(0, 200, (n, 2))
    wh = rng.uniform(5, 80, (n, 2))
    return (np.concatenate([xy, xy + wh], 1).astype(np.float32),
            rng.permutation(n).astype(np.float32) / n)  # distinct scores: one right answer


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("chunk", [7, 512])
def test_nms_matches_reference_greedy_nms(seed: int, chunk: int,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pp, "CHUNK", chunk)  # 7: boxes cross chunk borders
    rng = np.random.default_rng(seed)
    boxes, scores = random_boxes(rng, 120)
    for thr in (0.3, 0.5, 0.7):
        assert pp.nms(boxes, scores, thr).tolist() == reference_nms(boxes, scores, thr)


def test_batched_nms_suppresses_only_within_a_class() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 10, 10], [0, 0, 10, 10]], np.float32)
    scores = np.array([0.9, 0.8, 0.7], np.float32)
    classes = np.array([0, 0, 1])
    assert pp.batched_nms(boxes, scores, classes, 0.5).tolist() == [0, 2]


def test_box_iou_known_values() -> None:
    a = np.array([[0, 0, 10, 10]], np.float32)
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30], [0, 0, 0, 0]], np.float32)
    np.testing.assert_allclose(pp.box_iou(a, b)[0], [1.0, 1 / 3, 0.0, 0.0], atol=1e-6)


def test_decode_and_unletterbox_a_synthetic_head_output() -> None:
    # Given a 1280x720 frame letterboxed into 320: scaled by 0.25 to 320x180 and padded to the
    # stride (32) only, as ultralytics predicts: 6 px above and below, a 320x192 input
    lb = pp.letterbox(720, 1280, 320)
    assert (lb.new_w, lb.new_h, lb.top, lb.bottom, lb.left, lb.right) == (320, 180, 6, 6, 0, 0)
    assert lb.shape == (192, 320)
    assert [pp.letterbox(h, w, 320).shape for h, w in ((1280, 720), (480, 640), (90, 90))] == [
        (320, 192), (256, 320), (320, 320)]
    head = np.zeros((1, 4 + 3, 5), np.float32)
    # anchor 0: class 2 at 0.9, box (100,100)-(140,120) in model pixels; anchor 1: a duplicate
    # of it at 0.8 (suppressed); anchor 2: class 0 at 0.2 (under conf); anchor 3: class 1.
    head[0, :4, 0] = [120, 110, 40, 20]
    head[0, 6, 0] = 0.9
    head[0, :4, 1] = [121, 110, 40, 20]
    head[0, 6, 1] = 0.8
    head[0, :4, 2] = [50, 100, 10, 10]
    head[0, 4, 2] = 0.2
    head[0, :4, 3] = [310, 170, 40, 20]  # reaches past the right edge: clipped
    head[0, 5, 3] = 0.5
    # When decoded and mapped back to the frame
    dets = pp.postprocess(head, lb, 720, 1280, conf=0.25, iou=0.7)
    # Then two boxes, best first, in frame pixels, clipped to the frame
    assert dets.dtype == np.float32 and dets.shape == (2, 6)
    np.testing.assert_allclose(dets[0], [400, 376, 560, 456, 0.9, 2], atol=1e-4)
    np.testing.assert_allclose(dets[1], [1160, 616, 1280, 696, 0.5, 1], atol=1e-4)


def test_decode_keeps_at_most_max_det() -> None:
    rng = np.random.default_rng(1)
    head = np.zeros((1, 5, 400), np.float32)
    head[0, 0:2] = rng.uniform(0, 5000, (2, 400))  # far apart: NMS keeps all
    head[0, 2:4] = 4
    head[0, 4] = rng.uniform(0.5, 1, 400)
    out = pp.decode(head, conf=0.25, iou=0.7, max_det=300)
    assert len(out) == 300 and np.all(np.diff(out[:, 4]) <= 0)


# --- grades and model discovery (no model needed) --------------------------------------------
def test_grade_and_loading_mode_parse_every_spelling() -> None:
    assert [Grade.parse(v) for v in (0, "1", "high", "n", "S", "m", Grade.LOW)] == [
        Grade.LOW, Grade.MEDIUM, Grade.HIGH, Grade.LOW, Grade.MEDIUM, Grade.HIGH, Grade.LOW]
    assert LoadingMode.parse("eager") is LoadingMode.EAGER and LoadingMode.parse(0) == 0
    with pytest.raises(InputError, match="grade"):
        Grade.parse("huge")


def _info(name: str, grade: Grade | None) -> ModelInfo:
    return ModelInfo(name, Path(f"/m/{name}.xml"), grade, ("a",), 320, 1.0, "FP16")


def test_missing_grades_fall_back_to_the_nearest_lower_on_a_tie() -> None:
    only_n = resolve_grades([_info("n", Grade.LOW)])
    assert {g: m.name for g, m in only_n.models.items()} == {g: "n" for g in Grade}
    assert set(only_n.fallbacks) == {Grade.MEDIUM, Grade.HIGH}
    n_and_m = resolve_grades([_info("m", Grade.HIGH), _info("n", Grade.LOW)])
    assert n_and_m.models[Grade.MEDIUM].name == "n" and "LOW" in n_and_m.fallbacks[Grade.MEDIUM]
    s_only = resolve_grades([_info("x", None), _info("s", Grade.MEDIUM)])
    assert all(m.name == "s" for m in s_only.models.values())


# --- the shipped model -----------------------------------------------------------------------
def test_finds_items_and_tickets_on_held_out_frames(detector, samples) -> None:
    # Given held-out frames of the demo camera, detected at the model's own size (320)
    images, truths = zip(*samples, strict=True)
    dets = detector.detect_batch(list(images))
    # Then items are found with the right class, boxes sit on them, tickets always found
    assert all(d.dtype == np.float32 and d.shape[1:] == (6,) for d in dets)
    items = [t[t[:, 5] != TICKET] for t in truths]
    item_recall, _, _ = recall_precision([d[d[:, 5] != TICKET] for d in dets], items)
    recall, precision, ious = recall_precision(dets, list(truths))
    # yolo11n-demo measures here: item recall 0.98, precision 0.90, mean IoU 0.91, tickets 1.0
    assert item_recall >= 0.9, f"item recall {item_recall:.2f}"
    assert precision >= 0.8, f"precision {precision:.2f}"
    assert np.mean(ious) >= 0.85, f"mean IoU {np.mean(ious):.2f}"
    tickets = [t[t[:, 5] == TICKET] for t in truths]
    ticket_recall, _, _ = recall_precision([d[d[:, 5] == TICKET] for d in dets], tickets)
    assert ticket_recall >= 0.95, f"ticket recall {ticket_recall:.2f}"


def test_matches_an_independent_cv2_and_raw_ir_pipeline(detector, samples) -> None:
    import openvino as ov

    # Given the raw IR fed as ultralytics feeds it (cv2 letterbox, RGB, /255, NCHW float), the
    # frame shrunk as the training images were: averaged to 640 wide, then INTER_LINEAR
    core = ov.Core()
    raw = {}  # one compiled IR per input shape
    for image, _ in samples[:8]:
        lb = pp.letterbox(*image.shape[:2], 320)
        if lb.shape not in raw:
            model = core.read_model(str(detector.model_info.path))
            model.reshape([1, 3, *lb.shape])
            raw[lb.shape] = core.compile_model(model, "CPU")
        half = cv2.resize(image, (640, 360), interpolation=cv2.INTER_AREA)
        boxed = cv2.copyMakeBorder(cv2.resize(half, (lb.new_w, lb.new_h)), lb.top, lb.bottom,
                                   lb.left, lb.right, cv2.BORDER_CONSTANT, value=(114,) * 3)
        x = boxed[:, :, ::-1].transpose(2, 0, 1)[None].astype(np.float32) / 255
        head = raw[lb.shape](x)[0]
        want = np.array([[*b, s, c] for b, s, c in _slow_decode(head[0], lb)], np.float32)
        # When the detector sees the frame itself
        got = detector.detect(image)
        # Then it finds the same boxes, classes and scores
        assert len(got) == len(want)
        if len(want):
            pairs = match(got, want.reshape(-1, 6), 0.5, same_class=True)
            assert len(pairs) == len(want) and min(iou for *_, iou in pairs) > 0.99


def _slow_decode(pred: np.ndarray, lb: pp.Letterbox, conf: float = 0.25, iou: float = 0.7):
    """Per-anchor python decode + textbook NMS per class, then undo the letterbox."""
    found = []
    for a in range(pred.shape[1]):
        c = int(np.argmax(pred[4:, a]))
        if pred[4 + c, a] > conf:
            cx, cy, w, h = pred[:4, a]
            found.append(([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], pred[4 + c, a], c))
    kept = []
    for c in {f[2] for f in found}:
        mine = [f for f in found if f[2] == c]
        boxes = np.array([f[0] for f in mine], np.float32)
        kept += [mine[i] for i in reference_nms(boxes, np.array([f[1] for f in mine]), iou)]
    out = []
    for box, score, c in sorted(kept, key=lambda f: -f[1]):
        x1, y1, x2, y2 = box
        out.append(([(x1 - lb.left) / lb.gain, (y1 - lb.top) / lb.gain,
                     (x2 - lb.left) / lb.gain, (y2 - lb.top) / lb.gain], score, c))
    return out


def test_a_batch_gives_the_same_detections_as_single_frames(detector, samples) -> None:
    images = [image for image, _ in samples[:6]]
    batch = detector.detect_batch(images)
    singles = [detector.detect(image) for image in images]
    assert len(batch) == len(images)
    for b, s in zip(batch, singles, strict=True):
        np.testing.assert_allclose(b, s, atol=1e-3)


def test_smaller_input_still_finds_items_in_frame_coordinates(detector, samples) -> None:
    images, truths = zip(*samples, strict=True)
    # Given the stream dropped a resolution level: input 224, frames at 640x360
    assert detector.set_input_size(1000) == 320, "capped at the training size"
    assert detector.set_input_size(250) == 224, "rounded down to a multiple of 32"
    small = [cv2.resize(im, (640, 360), interpolation=cv2.INTER_AREA) for im in images]
    try:
        dets = detector.detect_batch(small)
    finally:
        detector.set_input_size(None)
    # Then the boxes are in the 640x360 frame's pixels and still on the items
    assert all(np.all(d[:, [0, 2]] <= 640) and np.all(d[:, [1, 3]] <= 360) for d in dets)
    half = [np.concatenate([t[:, :4] / 2, t[:, 4:]], 1) for t in truths]
    recall, precision, ious = recall_precision(dets, half)
    assert recall >= 0.8 and precision >= 0.75, f"recall {recall:.2f} precision {precision:.2f}"
    assert np.mean(ious) >= 0.8, f"mean IoU {np.mean(ious):.2f}"
    # And a per-call input size does the same without changing the detector's setting
    assert np.allclose(detector.detect(small[0], input_size=224), dets[0], atol=1e-3)
    assert detector.input_size == 320


def test_missing_grades_say_which_model_serves_them(tmp_path) -> None:
    # Given a models folder with the LOW and MEDIUM models only
    (tmp_path / "yolo11n-demo").symlink_to(SHIPPED_N, target_is_directory=True)
    (tmp_path / "yolo11s-demo").symlink_to(SHIPPED_N.parent / "yolo11s-demo",
                                           target_is_directory=True)
    with Detector(tmp_path, grade="high") as high:
        assert high.grade is Grade.HIGH
        assert high.fallback and "HIGH" in high.fallback
        assert high.model_info.grade is Grade.MEDIUM


def test_grade_switch_mid_sequence_loses_no_frame(tmp_path, samples) -> None:
    # Given LOW = the demo model and MEDIUM = a model that finds nothing, so every result
    # says which model made it
    images = [image for image, truth in samples if len(truth)][:4]
    blind = fake_ir(tmp_path / "blind", 4 + 13)
    with Detector({Grade.LOW: SHIPPED_N, Grade.MEDIUM: blind}, grade="low") as d:
        want = d.detect_batch(images)
        assert all(len(w) for w in want)
        first_done, switched = threading.Event(), threading.Event()
        got: list[list[np.ndarray]] = []
        errors: list[BaseException] = []

        def stream() -> None:
            try:
                for k in range(6):
                    if k == 3:
                        switched.wait(30)
                    got.append(d.detect_batch(images))
                    first_done.set()
            except BaseException as exc:  # noqa: BLE001 - reported by the test
                errors.append(exc)

        # When the grade changes while batches run
        worker = threading.Thread(target=stream)
        worker.start()
        assert first_done.wait(30)
        d.set_grade(Grade.MEDIUM)
        switched.set()
        worker.join(60)
        assert not worker.is_alive() and not errors, errors
    # Then every frame of every batch has a result, each batch ran wholly on one model, and
    # batches after the switch ran on the new one
    assert [len(batch) for batch in got] == [len(images)] * 6

    def on_low(batch: list[np.ndarray]) -> bool:
        return all(g.shape == w.shape and np.allclose(g, w, atol=1e-3)
                   for g, w in zip(batch, want, strict=True))

    def on_medium(batch: list[np.ndarray]) -> bool:
        return all(len(g) == 0 for g in batch)

    assert on_low(got[0])
    assert all(on_low(b) or on_medium(b) for b in got[1:3])
    assert all(on_medium(b) for b in got[3:])


def test_eager_loading_compiles_every_grade_at_start(tmp_path) -> None:
    blind = fake_ir(tmp_path / "blind", 4 + 13)
    with Detector({0: SHIPPED_N, 2: blind}, loading_mode="eager") as d:
        assert sorted(d.loaded_models) == sorted(["blind", "yolo11n-demo"])
    with Detector({0: SHIPPED_N, 2: blind}, loading_mode="lazy") as d:
        assert d.loaded_models == []
        d.detect(np.zeros((90, 160, 3), np.uint8))
        assert d.loaded_models == ["yolo11n-demo"]


def test_warm_up_compiles_every_grade_at_every_size_while_detection_goes_on(samples) -> None:
    image = samples[0][0]
    with Detector({0: SHIPPED_N, 1: SHIPPED_N}) as d:
        before = d.detect(image)  # compiles n at its own size
        warming = d.warm([320, 224, 160])
        during = [d.detect(image) for _ in range(3)]  # served by the graph already compiled
        warming.join(120)
        assert not warming.is_alive()
        # (for the 16:9 frame it plans for before it has seen one: the sample's own aspect)
        assert d.compiled_shapes() == {"yolo11n-demo": [(96, 160), (128, 224), (192, 320)]}
        assert all(np.allclose(before, got) for got in during)
        assert len(d.detect(image, 160)) and len(d.detect(image, 224))
        # A frame of another aspect (4:3) is detected at once and warms its own shapes
        four_three = cv2.resize(image[:, 160:1120], (640, 480))
        assert len(d.detect(four_three))
        assert d._warming is not None
        d._warming.join(120)
        assert d.compiled_shapes()["yolo11n-demo"] == [
            (96, 160), (128, 160), (128, 224), (192, 224), (192, 320), (256, 320)]
    # A worker's processor warms the sizes its confirmation lists, after its load.
    proc = make_processor({"work_load": 0, "loading_mode": 0, "warm_sizes": [256]})
    proc.load(0, 0)
    try:
        assert proc.detector is not None and proc.detector._warming is not None
        proc.detector._warming.join(120)
        shapes = proc.detector.compiled_shapes()
        # its start size, and 256, for a 16:9 frame
        assert shapes.pop("yolo11n-demo") == [(160, 256), (192, 320)]
        assert shapes and all(s == [(160, 256)] for s in shapes.values())  # every other grade
    finally:
        proc.close()
    with pytest.raises(InputError, match="warm_sizes"):
        make_processor({"warm_sizes": [8]})


def test_processor_follows_the_worker_protocol(samples) -> None:
    images = [image for image, _ in samples[:3]]
    proc = make_processor({"work_type": "YOLO_DETECTION", "work_load": 0, "loading_mode": 0})
    assert isinstance(proc, Processor) and isinstance(proc, DetectorProcessor)
    proc.load(0, 0)
    try:
        full = proc.process_batch(images, [{"id": i} for i in range(3)])
        mixed = proc.process_batch(images, [{"id": 0}, {"id": 1, "input_size": 224}, {"id": 2}])
        assert np.allclose(full[0], mixed[0]) and np.allclose(full[2], mixed[2])
        assert len(mixed[1]) and not np.array_equal(full[1], mixed[1])
        proc.set_grade(2)  # the shipped m model
        assert len(proc.process_batch(images[:1], [{}])) == 1
        with pytest.raises(InputError, match="input_size"):
            proc.process_batch(images[:1], [{"input_size": "big"}])
    finally:
        proc.close()


# --- bad input -------------------------------------------------------------------------------
@pytest.mark.parametrize("frame, problem", [
    (np.zeros((64, 64, 3), np.float32), "dtype uint8"),
    (np.zeros((64, 64), np.uint8), r"shape \(H, W, 3\)"),
    (np.zeros((64, 64, 4), np.uint8), r"shape \(H, W, 3\)"),
    (np.zeros((0, 64, 3), np.uint8), r"shape \(H, W, 3\)"),
    ([[0, 0, 0]], "numpy array"),
])
def test_bad_frames_are_one_clear_input_error(detector, frame, problem) -> None:
    with pytest.raises(InputError, match=problem):
        detector.detect_batch([np.zeros((64, 64, 3), np.uint8), frame])


def test_missing_model_folder_is_a_model_error(tmp_path) -> None:
    with pytest.raises(ModelError, match="not found"):
        Detector(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="no OpenVINO .xml"):
        Detector(tmp_path / "empty")


@pytest.mark.parametrize("damage", ["truncated bin", "garbage xml", "missing bin"])
def test_corrupt_model_is_a_model_error_naming_the_file(tmp_path, damage) -> None:
    folder = tmp_path / "broken"
    shutil.copytree(SHIPPED_N, folder, ignore=shutil.ignore_patterns("*.pt"))
    xml = next(folder.glob("*.xml"))
    if damage == "truncated bin":
        data = xml.with_suffix(".bin").read_bytes()
        xml.with_suffix(".bin").write_bytes(data[: len(data) // 2])
    elif damage == "garbage xml":
        xml.write_text("this is not an IR <net")
    else:
        xml.with_suffix(".bin").unlink()
    with pytest.raises(ModelError, match=str(folder)):
        with Detector(folder) as d:
            d.detect(np.zeros((90, 160, 3), np.uint8))


def test_a_model_that_is_not_a_detector_is_refused(tmp_path) -> None:
    classifier = fake_ir(tmp_path / "classifier", 1000, detector_head=False)
    with pytest.raises(ModelError, match="not a detector"):
        with Detector(classifier) as d:
            d.load()
    wrong_classes = fake_ir(tmp_path / "wrong", 4 + 7, classes=13)
    with pytest.raises(ModelError, match=r"expected \(1, 17, anchors\)"):
        Detector(wrong_classes).load()


def test_discover_lists_broken_models_with_their_problem(tmp_path) -> None:
    fake_ir(tmp_path / "good", 4 + 13)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "notes.txt").write_text("no model here")
    found = {m.name: m for m in discover(tmp_path)}
    assert found["good"].problem is None and found["good"].classes[0] == "c0"
    assert "no OpenVINO .xml" in (found["bad"].problem or "")


def test_the_shrink_averages_pixels_as_the_training_images_were_made(samples) -> None:
    from edgeapp.engine.vision.detector import shrink

    image = samples[0][0]
    # A 1280x720 frame to the model's 320x180: the mean of every 4x4 pixels (INTER_AREA),
    # as the training images were made, not INTER_LINEAR's sample of 2x2 of them
    got = shrink(image, 320, 180).astype(int)
    area = cv2.resize(image, (320, 180), interpolation=cv2.INTER_AREA).astype(int)
    aliased = cv2.resize(image, (320, 180), interpolation=cv2.INTER_LINEAR).astype(int)
    assert got.shape == (180, 320, 3) and np.abs(got - area).max() <= 1
    assert np.abs(aliased - area).max() > 20, "the frame has detail the aliased shrink loses"
    # A size in between (224 wide) and a frame already small keep their exact shapes
    assert shrink(image, 224, 126).shape == (126, 224, 3)
    small = area.astype(np.uint8)
    assert shrink(small, 320, 180) is small
