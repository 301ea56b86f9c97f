"""``edgeapp models``: listing installed models, the train-extra commands, verify's comparison."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import openvino  # noqa: F401 - imported up front: its telemetry starts a lasting idle thread
import pytest
import yaml

from edgeapp import cli
from edgeapp.training.export import TRAIN_EXTRA
from edgeapp.training.verify import compare, write_card

HAS_ULTRALYTICS = importlib.util.find_spec("ultralytics") is not None


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def fake_model(folder: Path, grade: str | None = None, classes: int = 13) -> Path:
    """A tiny detector-shaped IR (finds nothing) with ultralytics' metadata and a card."""
    import openvino as ov
    from openvino import opset13 as ops

    folder.mkdir(parents=True)
    x = ops.parameter([1, 3, -1, -1], ov.Type.f32, name="images")
    pooled = ops.avg_pool(x, [32, 32], [0, 0], [0, 0], [32, 32], True)
    conv = ops.convolution(pooled, ops.constant(np.zeros((4 + classes, 3, 1, 1), np.float32)),
                           [1, 1], [0, 0], [0, 0], [1, 1])
    out = ops.reshape(conv, ops.constant(np.array([1, 4 + classes, -1], np.int64)), False)
    ov.save_model(ov.Model([out], [x], "fake"), str(folder / f"{folder.name}.xml"))
    names = {i: f"thing{i}" for i in range(classes)}
    (folder / "metadata.yaml").write_text(yaml.safe_dump({"imgsz": [256, 256], "names": names}))
    if grade:
        (folder / "card.yaml").write_text(yaml.safe_dump({"grade": grade, "input_size": 224}))
    return folder


def test_list_shows_grade_classes_input_size_and_problems(capsys, tmp_path):
    # Given a models folder with a medium-grade model and a broken one
    fake_model(tmp_path / "mine-s", grade="medium")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "model.bin").write_bytes(b"\0" * 10)
    # When listed as JSON
    code, out, err = run_cli(capsys, "models", "list", "--json", "--path", str(tmp_path))
    rows = {row["name"]: row for row in map(json.loads, out.splitlines())}
    # Then our models are there with what the card and metadata say
    assert code == 0
    mine = rows["mine-s"]
    assert (mine["grade"], mine["classes"], mine["input_size"]) == ("medium", 13, 224)
    assert mine["class_names"][:2] == ["thing0", "thing1"] and mine["problem"] is None
    assert "no OpenVINO .xml" in rows["broken"]["problem"]
    # And the table says the same in words
    code, out, _ = run_cli(capsys, "models", "list", "--path", str(tmp_path))
    line = next(x for x in out.splitlines() if x.startswith("mine-s"))
    assert "medium" in line and "224" in line and "13: thing0, thing1, thing2, thing3, …" in line
    assert any(x.startswith("broken") and "BROKEN" in x for x in out.splitlines())


@pytest.mark.skipif(HAS_ULTRALYTICS, reason="this environment has the train extra")
@pytest.mark.parametrize("argv", [
    ["models", "export", "model.pt"],
    ["models", "verify", "--grade", "n"],
    ["models", "train-demo", "--epochs", "1"],
])
def test_train_commands_without_the_extra_say_so_in_one_line(capsys, argv):
    code, out, err = run_cli(capsys, *argv)
    assert code == 3 and out == ""
    assert err == f"edgeapp: {TRAIN_EXTRA}\n"


@pytest.mark.skipif(HAS_ULTRALYTICS, reason="this environment has the train extra")
def test_verify_hands_over_to_another_python(capfd):
    # The interpreter handed over to (this one, without ultralytics) runs the same command
    code = cli.main(["models", "verify", "--frames", "3", "--python", sys.executable])
    _, err = capfd.readouterr()
    assert code == 3 and TRAIN_EXTRA in err


def test_verify_with_a_python_that_does_not_exist_is_one_line(capsys, tmp_path):
    code, out, err = run_cli(capsys, "models", "verify", "--python", str(tmp_path / "nope"))
    assert code == 6 and "--python" in err and len(err.splitlines()) == 1


def _dets(*rows: list[float]) -> np.ndarray:
    return np.array(rows, np.float32).reshape(-1, 6)


def test_compare_passes_identical_outputs_and_catches_disagreement():
    a = [_dets([0, 0, 100, 100, 0.9, 1], [200, 200, 260, 260, 0.6, 3]), _dets()]
    same = compare(a, [x.copy() for x in a], conf=0.25)
    assert same["passed"] and same["iou_min"] == 1.0 and same["equal_count_frames"] == 1.0
    # a box moved by a fifth of its size: IoU ~0.67 < 0.9
    moved = [_dets([20, 0, 120, 100, 0.9, 1], [200, 200, 260, 260, 0.6, 3]), _dets()]
    result = compare(a, moved, conf=0.25)
    assert not result["passed"] and result["iou_ge_0_9"] == 0.5
    # another class for a matched box
    relabelled = [_dets([0, 0, 100, 100, 0.9, 2], [200, 200, 260, 260, 0.6, 3]), _dets()]
    assert compare(a, relabelled, conf=0.25)["class_agreement"] == 0.5
    # a box only one side has: fine at the threshold (0.26), not when confident (0.8)
    near = [a[0], _dets([500, 500, 540, 540, 0.26, 0])]
    assert compare(a, near, conf=0.25)["unmatched_near_threshold"] == 1
    assert compare(a, near, conf=0.25)["passed"]
    sure = [a[0], _dets([500, 500, 540, 540, 0.8, 0])]
    assert compare(a, sure, conf=0.25)["unmatched_confident"] == 1
    assert not compare(a, sure, conf=0.25)["passed"]


def test_write_card_adds_the_result_once(tmp_path):
    (tmp_path / "card.yaml").write_text(yaml.safe_dump({"name": "m", "grade": "low"}))
    (tmp_path / "MODEL_CARD.md").write_text("# m — grade LOW\n\n- **grade**: low\n")
    for iou_mean in (0.99, 0.98):  # a second run replaces the first
        write_card(tmp_path, {"model": "m", "iou_mean": iou_mean, "passed": True})
    card = yaml.safe_load((tmp_path / "card.yaml").read_text())
    assert card["grade"] == "low" and card["verify"]["iou_mean"] == 0.98
    text = (tmp_path / "MODEL_CARD.md").read_text()
    assert text.startswith("# m — grade LOW") and text.count("## Verify") == 1
    assert "**iou_mean**: 0.98" in text


def test_training_time_of_a_resumed_run_adds_both_stretches(tmp_path):
    from edgeapp.training.train import _train_minutes

    # ultralytics writes elapsed seconds per epoch; a resumed run starts its clock again
    (tmp_path / "results.csv").write_text(
        "epoch,time,loss\n1,600,2.0\n2,1200,1.5\n3,500,1.2\n4,1100,1.0\n")
    assert _train_minutes(tmp_path) == round((1200 + 1100) / 60, 1)
    assert _train_minutes(tmp_path / "missing") is None


def test_verify_feeds_both_sides_the_frames_as_the_detector_shrinks_them(monkeypatch):
    from edgeapp.engine.vision.detector import Detector
    from edgeapp.engine.vision.models import installed_models
    from edgeapp.training import verify

    # Given ultralytics' side played by a second detector of the same IR, which notes the
    # frames it is handed (the train extra is not installed in tests)
    (info,) = [m for m in installed_models() if m.name == "yolo11n-demo"]
    handed: list[tuple[int, int]] = []

    def reference(pt, frames, *, imgsz, conf, iou):
        handed.extend(f.shape[:2] for f in frames)
        with Detector({0: info}, conf=conf, iou=iou) as other:
            return other.detect_batch(frames, input_size=imgsz)

    monkeypatch.setattr(verify, "reference_predictions", reference)
    # When verify runs on 4 held-out 1280x720 frames
    result = verify.verify_model(info, frames=4)
    # Then both sides saw them shrunk to the model's 320 (the same pixels: they agree box for
    # box), and the boxes are scored in the frames' own pixels: against the generator's truth
    # they are where the items are
    assert handed == [(180, 320)] * 4
    assert result["matched"] == result["boxes_ref"] == result["boxes_ours"] > 0
    assert result["iou_min"] > 0.99 and result["class_agreement"] == 1.0
    assert result["truth_ours"]["recall"] >= 0.8 and result["truth_ours"]["precision"] >= 0.8
    assert result["truth_ours"] == result["truth_ultralytics"]
