"""Packaging: the worker's systemd unit, and (slow, with EDGEAPP_PACKAGING=1) the one-folder app
built by ``packaging/build.sh`` with its own smoke checks."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from edgeapp.cli import build_parser
from edgeapp.commands.worker_cmd import ENDPOINT

ROOT = Path(__file__).resolve().parents[1]
UNIT = ROOT / "packaging" / "systemd" / "edgeapp-worker.service"
UNIT_PROGRAM = "/opt/edgeapp/venv/bin/edgeapp"
# Keys systemd < 254 does not know: it warns and ignores them (the back-off then is RestartSec).
NEWER_SYSTEMD_KEYS = ("RestartSteps", "RestartMaxDelaySec")


def _settings(text: str) -> dict[str, list[str]]:
    """The unit's active settings (comments skipped), each key's values in order."""
    found: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith(("#", ";", "[")):
            key, value = line.split("=", 1)
            found.setdefault(key.strip(), []).append(value.strip())
    return found


def _installed_edgeapp() -> Path | None:
    for candidate in (Path(sysconfig.get_path("scripts")) / "edgeapp", shutil.which("edgeapp")):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return Path(candidate)
    return None


def _verify(unit: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True,
                          text=True, timeout=60, cwd=unit.parent)


def _complaints(output: str) -> list[str]:
    return [line for line in output.splitlines()
            if line.strip() and not any(f"Unknown key '{k}'" in line or f"Unknown key name '{k}'"
                                        in line for k in NEWER_SYSTEMD_KEYS)]


def test_worker_unit_runs_the_worker_hardened_and_restarts_with_back_off() -> None:
    settings = _settings(UNIT.read_text())
    assert settings["Restart"] == ["on-failure"] and "RestartSec" in settings
    for key, value in (("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"),
                       ("ProtectHome", "yes"), ("PrivateTmp", "yes"), ("DynamicUser", "yes"),
                       ("StateDirectory", "edgeapp-worker")):
        assert settings.get(key) == [value], f"{key}={value} hardens the worker"
    gpu = [line for line in UNIT.read_text().splitlines() if line.startswith("# DeviceAllow=")]
    assert gpu, "the GPU's DeviceAllow lines are there, commented"


def test_worker_unit_command_line_is_one_the_worker_accepts() -> None:
    # Given the unit's ExecStart with systemd's specifiers and variables filled in
    settings = _settings(UNIT.read_text())
    (exec_start,) = settings["ExecStart"]
    env = dict(v.split("=", 1) for v in settings["Environment"])
    filled = re.sub(r"\$\{(\w+)\}", lambda m: env[m.group(1)], exec_start)
    filled = filled.replace("%S", "/var/lib").replace("%H", socket.gethostname())
    program, *args = shlex.split(filled)
    # when edgeapp's own parser reads it
    parsed = build_parser()[0].parse_args(args)
    # then it is the worker, connecting to a Producer, with its keys in the state folder
    assert program == UNIT_PROGRAM
    assert parsed.worker and ENDPOINT.match(parsed.connect), parsed.connect
    assert parsed.keys == Path("/var/lib") / settings["StateDirectory"][0] / "keys"


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="needs systemd-analyze")
def test_systemd_analyze_verify_accepts_the_worker_unit(tmp_path: Path) -> None:
    edgeapp = _installed_edgeapp()
    if edgeapp is None:
        pytest.skip("no installed edgeapp program: verify needs ExecStart's program to exist")
    # verify checks that ExecStart's program exists: the shipped unit names the edge box's
    # /opt/edgeapp/venv/bin/edgeapp, so the whole check runs on a copy naming this machine's.
    if not Path(UNIT_PROGRAM).exists():
        shipped = _verify(UNIT)
        assert _complaints(shipped.stderr) == [
            f"edgeapp-worker.service: Command {UNIT_PROGRAM} is not executable: "
            "No such file or directory"], "the missing program is the shipped unit's only fault"
    unit = tmp_path / UNIT.name
    unit.write_text(UNIT.read_text().replace(UNIT_PROGRAM, str(edgeapp)))

    checked = _verify(unit)

    assert checked.returncode == 0, checked.stderr
    assert _complaints(checked.stdout + checked.stderr) == [], checked.stderr


def test_systemd_analyze_verify_would_catch_a_broken_unit(tmp_path: Path) -> None:
    if not shutil.which("systemd-analyze") or _installed_edgeapp() is None:
        pytest.skip("needs systemd-analyze and an installed edgeapp program")
    unit = tmp_path / UNIT.name
    unit.write_text(UNIT.read_text().replace(UNIT_PROGRAM, str(_installed_edgeapp()))
                    .replace("Restart=on-failure", "Restart=when-it-feels-like-it"))
    assert _complaints(_verify(unit).stderr), "an invalid value is reported"


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("EDGEAPP_PACKAGING") != "1",
                    reason="builds the one-folder app (many minutes): set EDGEAPP_PACKAGING=1")
@pytest.mark.timeout(3600)
def test_build_sh_builds_the_one_folder_app_and_its_smoke_checks_pass() -> None:
    pytest.importorskip("PyInstaller", reason="needs the package extra: pip install '.[package]'")
    env = {**os.environ, "PYTHON": sys.executable}
    done = subprocess.run(["bash", str(ROOT / "packaging" / "build.sh")], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=3500)
    print(done.stdout)  # the build time, the folder's size, the smoke runs' summaries (-rP)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "smoke: ok" in done.stdout
    assert (ROOT / "dist" / "edgeapp" / "_internal" / "resources" / "models").is_dir()
