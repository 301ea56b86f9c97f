"""The ``edgeapp`` command: modes, one-line errors, named exit codes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from edgeapp import cli, extras
from edgeapp.config import Config, default_config_yaml, load_config
from edgeapp.errors import ConfigError, MissingExtraError

REPO = Path(__file__).resolve().parents[1]


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_print_default_prints_the_commented_default(capsys):
    code, out, err = run_cli(capsys, "config", "--print-default")
    assert code == 0 and err == ""
    assert out == default_config_yaml()


def test_check_accepts_a_good_file(capsys, tmp_path):
    path = tmp_path / "ok.yaml"
    path.write_text("stations:\n  - source: synthetic\n  - source: usb:0\n")

    code, out, err = run_cli(capsys, "config", "--check", str(path))

    assert (code, out, err) == (0, f"config ok: {path} (2 stations)\n", "")


def test_check_refuses_a_bad_file_with_one_line_and_exit_2(capsys, tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("vlm:\n  batch_window_ms: -5\n")

    code, out, err = run_cli(capsys, "config", "--check", str(path))

    assert code == ConfigError.exit_code == 2
    assert out == ""
    assert err == "edgeapp: config error: vlm.batch_window_ms = -5: expected an integer >= 0\n"


def test_global_config_is_checked_before_the_mode_runs(capsys, tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("colour: red\n")

    code, out, err = run_cli(capsys, "--config", str(path), "config", "--print-default")

    assert code == 2 and out == "", "the mode must not run with a bad --config"
    assert err.startswith("edgeapp: config error: colour = 'red': unknown key")


def test_a_usage_error_is_one_line_with_its_own_exit_code(capsys):
    code, _, err = run_cli(capsys, "no-such-mode")
    assert code == 64
    assert err.startswith("edgeapp: argument MODE: invalid choice: 'no-such-mode'")
    assert err.count("\n") == 1

    code, _, err = run_cli(capsys, "config")
    assert code == 64 and err.startswith("edgeapp: config: one of the arguments")


def test_help_and_version_exit_0(capsys):
    code, out, _ = run_cli(capsys, "--version")
    assert (code, out.strip()) == (0, "edgeapp 0.1.0")
    code, out, _ = run_cli(capsys, "--help")
    assert code == 0 and "exit codes:" in out and "  2  a config file" in out


class _BrokenCommand:
    @staticmethod
    def run(args):
        raise ValueError("boom\nsecond line")


def test_an_unexpected_error_is_one_line_and_debug_shows_the_traceback(capsys, monkeypatch):
    real = cli.build_parser

    def with_broken_mode():
        parser, modes = real()
        modes.commands["config"] = _BrokenCommand  # type: ignore[assignment]
        return parser, modes

    monkeypatch.setattr(cli, "build_parser", with_broken_mode)

    code, _, err = run_cli(capsys, "config", "--print-default")
    assert code == cli.EXIT_INTERNAL_ERROR
    assert err == ("edgeapp: internal error: ValueError: boom second line "
                   "(run again with --debug to see the traceback)\n")

    code, _, err = run_cli(capsys, "--debug", "config", "--print-default")
    assert code == cli.EXIT_INTERNAL_ERROR
    assert "Traceback" in err and "ValueError: boom" in err


def test_every_command_module_has_the_mode_interface():
    parser, modes = cli.build_parser()
    assert set(modes.commands) >= {"config", "record", "bench"}
    for module in modes.commands.values():
        assert callable(module.add_parser) and callable(module.run)


def test_modes_see_the_loaded_config(capsys, monkeypatch, tmp_path):
    seen = {}

    class Spy:
        @staticmethod
        def run(args):
            seen["cfg"] = args.cfg
            return 0

    real = cli.build_parser

    def with_spy():
        parser, modes = real()
        modes.commands["config"] = Spy  # type: ignore[assignment]
        return parser, modes

    monkeypatch.setattr(cli, "build_parser", with_spy)
    path = tmp_path / "one.yaml"
    path.write_text("stations: [synthetic]\n")

    assert run_cli(capsys, "config", "--print-default")[0] == 0
    assert seen["cfg"] == Config()
    assert run_cli(capsys, "--config", str(path), "config", "--print-default")[0] == 0
    assert seen["cfg"] == load_config(path) and len(seen["cfg"].stations) == 1


def test_require_names_the_extra_to_install():
    assert extras.require("json", "app").__name__ == "json"
    with pytest.raises(MissingExtraError) as info:
        extras.require("edgeapp_no_such_module.widgets", "app")
    assert str(info.value) == "this mode needs the 'app' extra: pip install 'edgeapp[app]'"
    assert info.value.exit_code == 3


def test_the_real_command_exits_2_with_one_line_and_no_traceback(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("stations:\n  - fps: fast\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])}

    proc = subprocess.run([sys.executable, "-m", "edgeapp", "config", "--check", "bad.yaml"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)

    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    assert "Traceback" not in proc.stderr
    assert proc.stderr.splitlines() == [
        "edgeapp: config error: stations[0].fps = 'fast': expected a number > 0 and <= 240"]


def test_check_parses_the_orders_file_and_names_the_line_and_column(capsys, tmp_path):
    # Given a config whose orders file has a quantity that is not a number on line 4
    orders = tmp_path / "orders.json"
    orders.write_text('{\n  "925": [\n    {"name": "burger", "quantity": 2},\n'
                      '    {"name": "cola", "quantity": "two"}\n  ]\n}\n')
    path = tmp_path / "site.yaml"
    path.write_text("orders_path: orders.json\n")

    code, out, err = run_cli(capsys, "config", "--check", str(path))

    assert (code, out) == (2, "")
    assert err == (f"edgeapp: config error: orders file {orders}, line 4, column 34: order 925 "
                   "line 1: quantity 'two' must be an integer >= 1\n")


def test_check_names_a_json_syntax_error_in_the_inventory(capsys, tmp_path):
    inventory = tmp_path / "inventory.json"
    inventory.write_text('{"items": [\n  {"name": "burger"}\n  {"name": "cola"}\n]}\n')
    path = tmp_path / "site.yaml"
    path.write_text("inventory_path: inventory.json\n")

    code, out, err = run_cli(capsys, "config", "--check", str(path))

    assert (code, out) == (2, "")
    assert err == (f"edgeapp: config error: inventory file {inventory}, line 3, column 3: "
                   "not valid JSON: Expecting ',' delimiter\n")


@pytest.mark.parametrize("content", [None, b"not a video at all" * 100])
def test_check_opens_every_video_file_source(capsys, tmp_path, content):
    # Given a station watching a video file that is missing, or is not a video
    clip = tmp_path / "counter.mp4"
    if content is not None:
        clip.write_bytes(content)
    path = tmp_path / "site.yaml"
    path.write_text("stations:\n  - source: synthetic\n  - source: counter.mp4\n")

    code, out, err = run_cli(capsys, "config", "--check", str(path))

    assert (code, out) == (2, "")
    assert err.startswith(f"edgeapp: config error: stations[1].source = '{clip}': ")
    assert ("not found" if content is None else "corrupt or unsupported") in err
    assert err.count("\n") == 1, "one line"


def test_check_accepts_a_video_file_that_opens(capsys, tmp_path):
    from edgeapp.engine.orders.catalog import load_catalog
    from edgeapp.engine.sources.record import record_synthetic

    record_synthetic(tmp_path / "clip.avi", 0.5, load_catalog(), width=320, height=180)
    path = tmp_path / "site.yaml"
    path.write_text("stations:\n  - source: clip.avi\n")

    code, out, err = run_cli(capsys, "config", "--check", str(path))

    assert (code, out, err) == (0, f"config ok: {path} (1 station)\n", "")


def test_an_invalid_orders_file_at_run_time_is_a_config_error_too(tmp_path):
    # Given `edgeapp --headless` with a config that was not checked, whose orders file is bad
    (tmp_path / "orders.json").write_text('{"925": []}')
    (tmp_path / "site.yaml").write_text("orders_path: orders.json\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])}

    proc = subprocess.run([sys.executable, "-m", "edgeapp", "--config", "site.yaml",
                           "--headless", "--duration", "5"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)

    # Then it exits 2, as every config-time error does, with the file, line and column
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.splitlines()[-1] == (
        f"edgeapp: config error: orders file {tmp_path / 'orders.json'}, line 1, column 9: "
        "order 925 must be a non-empty list of items"), proc.stderr
