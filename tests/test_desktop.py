"""The desktop launcher: ``edgeapp --install-desktop`` / ``--uninstall-desktop`` for a user,
the shipped entry and metainfo as the freedesktop tools read them, ``edgeapp-gui``'s log."""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from edgeapp import desktop
from edgeapp.errors import InstallError
from edgeapp.paths import APP_NAME, desktop_files_dir

ROOT = Path(__file__).resolve().parents[1]
ENTRY = desktop_files_dir() / f"{desktop.APP_ID}.desktop"
METAINFO = desktop_files_dir() / f"{desktop.APP_ID}.metainfo.xml"


def _edgeapp(*args: str, data_home: Path, code: str | None = None) -> subprocess.CompletedProcess:
    """Run ``edgeapp ARGS`` (or ``code``) in a fresh interpreter with its own XDG data folder."""
    env = {**os.environ, "XDG_DATA_HOME": str(data_home), "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-c", code] if code else [sys.executable, "-m", "edgeapp", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)


def _entry(path: Path) -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # keys are case-sensitive
    parser.read(path, encoding="utf-8")
    return parser["Desktop Entry"]


def test_install_writes_entry_icons_and_metainfo_under_xdg_data_home(tmp_path: Path) -> None:
    # Given an empty XDG data folder, when the launcher is installed
    done = _edgeapp("--install-desktop", data_home=tmp_path)

    # then every file is in its freedesktop place
    assert done.returncode == 0, done.stderr
    planned = desktop.planned_files(tmp_path).values()
    assert all(p.is_file() for p in planned), [str(p) for p in planned if not p.is_file()]
    assert (tmp_path / "icons/hicolor/48x48/apps/org.edgeapp.EdgeApp.png").is_file()
    assert (tmp_path / "icons/hicolor/scalable/apps/org.edgeapp.EdgeApp.svg").is_file()
    # and the entry starts the installed program by absolute path, not through the PATH
    entry = _entry(tmp_path / "applications" / f"{desktop.APP_ID}.desktop")
    program = Path(entry["Exec"])
    assert program.is_absolute() and program.name in desktop.LAUNCHERS, entry["Exec"]
    assert program.is_file() and os.access(program, os.X_OK)
    assert entry["TryExec"] == entry["Exec"]
    assert entry["Icon"] == desktop.APP_ID and entry["Terminal"] == "false"
    assert str(program) in done.stdout, "the output names what the launcher starts"


def test_install_imports_no_qt(tmp_path: Path) -> None:
    code = ("import sys; from edgeapp.cli import main; code = main(['--install-desktop']); "
            "qt = sorted(m for m in sys.modules if m.startswith(('PySide6', 'pyqtgraph'))); "
            "print(qt); sys.exit(code or bool(qt))")
    done = _edgeapp(data_home=tmp_path, code=code)
    assert done.returncode == 0, done.stdout + done.stderr


def test_uninstall_removes_what_install_wrote_and_twice_is_fine(tmp_path: Path) -> None:
    assert _edgeapp("--install-desktop", data_home=tmp_path).returncode == 0
    (tmp_path / "applications" / "other.desktop").write_text("[Desktop Entry]\n")

    first = _edgeapp("--uninstall-desktop", data_home=tmp_path)
    second = _edgeapp("--uninstall-desktop", data_home=tmp_path)

    assert first.returncode == 0 and "11 files" in first.stdout, first.stdout + first.stderr
    assert not any(p.exists() for p in desktop.planned_files(tmp_path).values())
    assert (tmp_path / "applications" / "other.desktop").exists(), "other entries are kept"
    assert second.returncode == 0 and "nothing to remove" in second.stdout


def test_install_into_an_unwritable_folder_is_one_line_and_exit_14(tmp_path: Path) -> None:
    (tmp_path / "applications").write_text("a file where the folder should be")
    done = _edgeapp("--install-desktop", data_home=tmp_path)
    assert done.returncode == 14, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot write" in lines[0] and "applications" in lines[0]


def test_a_missing_shipped_file_is_named(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(desktop, "icons_dir", lambda: tmp_path / "no-icons")
    with pytest.raises(InstallError, match="shipped file is missing: .*no-icons"):
        desktop.install(tmp_path / "home", launcher=Path("/usr/bin/edgeapp-gui"))
    assert not (tmp_path / "home").exists(), "nothing is half-installed"


def test_relative_xdg_data_home_is_ignored_as_the_spec_says() -> None:
    assert desktop.data_home({"XDG_DATA_HOME": "rel/share"}) == Path.home() / ".local/share"
    assert desktop.data_home({"XDG_DATA_HOME": "/srv/share"}) == Path("/srv/share")


def test_a_path_with_spaces_and_dollars_is_quoted_in_exec() -> None:
    launcher = Path('/opt/my apps/$HOME/edgeapp-gui')
    assert desktop.exec_argument(launcher) == '"/opt/my apps/\\\\$HOME/edgeapp-gui"'
    assert desktop.exec_argument(Path("/usr/bin/edgeapp-gui")) == "/usr/bin/edgeapp-gui"
    assert desktop.exec_argument(Path("/opt/100%/edgeapp")) == "/opt/100%%/edgeapp"


def test_frozen_app_launches_its_own_gui_executable(tmp_path, monkeypatch) -> None:
    (tmp_path / "edgeapp").write_text("")
    (tmp_path / "edgeapp-gui").write_text("")
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "executable", str(tmp_path / "edgeapp"))
    assert desktop.find_launcher() == tmp_path / "edgeapp-gui"


@pytest.mark.skipif(not shutil.which("desktop-file-validate"), reason="needs desktop-file-utils")
def test_desktop_file_validate_accepts_the_installed_entry(tmp_path: Path) -> None:
    odd = desktop.desktop_entry(ENTRY.read_text(), Path("/opt/my apps/$x/edgeapp-gui"))
    (tmp_path / f"{desktop.APP_ID}.desktop").write_text(odd)
    assert _edgeapp("--install-desktop", data_home=tmp_path / "home").returncode == 0
    for entry in (tmp_path / "home/applications" / ENTRY.name, tmp_path / ENTRY.name):
        checked = subprocess.run(["desktop-file-validate", str(entry)], capture_output=True,
                                 text=True, timeout=30)
        assert checked.returncode == 0 and "error" not in checked.stdout, checked.stdout


@pytest.mark.skipif(not shutil.which("appstreamcli"), reason="needs appstreamcli")
def test_appstream_metainfo_validates() -> None:
    checked = subprocess.run(["appstreamcli", "validate", "--no-net", str(METAINFO)],
                             capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr


_WM_CLASS = f"""
import subprocess, sys
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMainWindow
app = QApplication(sys.argv)
app.setApplicationName({APP_NAME!r})
app.setDesktopFileName({desktop.APP_ID!r})
window = QMainWindow()
window.show()
def probe():
    out = subprocess.run(["xprop", "-id", str(int(window.winId())), "WM_CLASS"],
                         capture_output=True, text=True)
    print(out.stdout.strip())
    app.quit()
QTimer.singleShot(500, probe)
app.exec()
"""


@pytest.mark.skipif(not (shutil.which("xvfb-run") and shutil.which("xprop")),
                    reason="needs xvfb-run and xprop (x11-utils)")
def test_startup_wm_class_matches_a_real_x11_window(tmp_path: Path) -> None:
    # The window helper names the application APP_NAME; X11 desktops match the entry's
    # StartupWMClass against the class part of the window's WM_CLASS.
    script = tmp_path / "wm_class.py"
    script.write_text(_WM_CLASS)
    env = {k: v for k, v in os.environ.items() if k != "QT_QPA_PLATFORM"}
    done = subprocess.run(["xvfb-run", "-a", sys.executable, str(script)], env=env,
                          capture_output=True, text=True, timeout=120)
    if "could not load the Qt platform plugin" in done.stderr.lower():
        pytest.skip("Qt's xcb platform plugin cannot load here (libxcb-cursor0 missing?)")
    assert done.returncode == 0, done.stderr
    # WM_CLASS(STRING) = "instance", "class"
    wm_class = done.stdout.strip().rsplit("=", 1)[-1].split(",")[-1].strip().strip('"')
    assert wm_class == _entry(ENTRY)["StartupWMClass"], done.stdout


def test_gui_main_without_a_console_writes_its_errors_to_the_log(tmp_path: Path) -> None:
    # As Windows' pythonw and a console-less frozen executable start it: no stdout/stderr.
    code = ("import sys; sys.stdout = sys.stderr = None; "
            "sys.argv = ['edgeapp-gui', '--no-such-option']; "
            "from edgeapp.launcher import gui_main; sys.exit(gui_main())")
    done = _edgeapp(data_home=tmp_path, code=code)
    assert done.returncode == 64, done.stderr
    log = tmp_path / "edgeapp" / "logs" / "edgeapp-gui.log"
    assert "--no-such-option" in log.read_text(), "the usage error is in the log"
