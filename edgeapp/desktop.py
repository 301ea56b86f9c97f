"""The desktop launcher for the current user: the freedesktop entry, the icon, the metainfo.

``edgeapp --install-desktop`` copies them under the XDG data folder (``$XDG_DATA_HOME``, else
``~/.local/share``): ``applications/``, ``icons/hicolor/SIZE/apps/`` and ``metainfo/``. The
entry's ``Exec`` names the installed ``edgeapp-gui`` by its absolute path: a desktop's
launcher has neither a shell's PATH nor an activated virtual environment. ``--uninstall-desktop``
removes what the install wrote. Standard library only, so neither needs Qt.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from edgeapp.errors import InstallError
from edgeapp.paths import desktop_files_dir, icons_dir

APP_ID = "org.edgeapp.EdgeApp"
ICON_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)
# The program the entry starts, best first: the console-less one, then the command itself.
LAUNCHERS = ("edgeapp-gui", "edgeapp")
# Characters that make an Exec argument need quotes (Desktop Entry Specification, "The Exec key").
_RESERVED = re.compile(r"[\s\"'\\><~|&;$*?#()`]")


@dataclass(frozen=True)
class Installed:
    """What ``install`` wrote: every file, and the program the entry starts."""

    data_home: Path
    files: list[Path]
    launcher: Path


def data_home(env: Mapping[str, str] = os.environ) -> Path:
    """The user's XDG data folder: ``$XDG_DATA_HOME`` when absolute (the spec ignores a relative
    one), else ``~/.local/share``."""
    value = env.get("XDG_DATA_HOME", "")
    return Path(value) if os.path.isabs(value) else Path.home() / ".local" / "share"


def planned_files(home: Path) -> dict[Path, Path]:
    """Each shipped file and where the install puts it under ``home``."""
    shipped, icons = desktop_files_dir(), icons_dir()
    hicolor = home / "icons" / "hicolor"
    files = {
        shipped / f"{APP_ID}.desktop": home / "applications" / f"{APP_ID}.desktop",
        shipped / f"{APP_ID}.metainfo.xml": home / "metainfo" / f"{APP_ID}.metainfo.xml",
        icons / "edgeapp.svg": hicolor / "scalable" / "apps" / f"{APP_ID}.svg",
    }
    for size in ICON_SIZES:
        files[icons / f"edgeapp-{size}.png"] = hicolor / f"{size}x{size}" / "apps" / f"{APP_ID}.png"
    return files


def find_launcher() -> Path:
    """The installed ``edgeapp-gui`` (else ``edgeapp``) by absolute path.

    Frozen (the one-folder app): the app's own executable. Installed with pip: the scripts
    folder of this interpreter (its virtual environment), then the user's (``pip --user``),
    then the PATH.
    """
    if getattr(sys, "frozen", False):
        exe = Path(sys.executable).resolve()
        gui = exe.with_name(LAUNCHERS[0] + exe.suffix)
        return gui if gui.is_file() else exe
    folders = [sysconfig.get_path("scripts")]
    user_scheme = f"{os.name}_user"
    if user_scheme in sysconfig.get_scheme_names():
        folders.append(sysconfig.get_path("scripts", user_scheme))
    for name in LAUNCHERS:
        for folder in folders:
            candidate = Path(folder) / name
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return candidate.absolute()
        on_path = shutil.which(name)
        if on_path:
            return Path(on_path).absolute()
    raise InstallError(f"no installed 'edgeapp-gui' or 'edgeapp' program (looked in "
                       f"{', '.join(folders)} and the PATH): install edgeapp with pip first, "
                       "e.g. pip install 'edgeapp[app]'")


def exec_argument(path: Path) -> str:
    """``path`` as one argument of a desktop entry's ``Exec`` value (quoted and escaped)."""
    text = str(path)
    if "\n" in text:
        raise InstallError(f"the program's path cannot go into a desktop entry: {text!r}")
    text = text.replace("%", "%%")  # % starts a field code
    if _RESERVED.search(text):
        text = '"' + re.sub(r'(["`$\\])', r"\\\1", text) + '"'
    return text.replace("\\", "\\\\")  # the string escape comes on top of the quoting


def desktop_entry(template: str, launcher: Path) -> str:
    """The shipped entry with ``Exec`` and ``TryExec`` set to ``launcher``."""
    lines = []
    for line in template.splitlines():
        if line.startswith("Exec="):
            line = f"Exec={exec_argument(launcher)}"
        elif line.startswith("TryExec="):
            line = "TryExec=" + str(launcher).replace("\\", "\\\\")
        lines.append(line)
    return "\n".join(lines) + "\n"


def install(home: Path | None = None, launcher: Path | None = None) -> Installed:
    """Install the entry, icons and metainfo for the current user; return what was written."""
    _require_freedesktop()
    home = home or data_home()
    launcher = launcher or find_launcher()
    planned = planned_files(home)
    missing = [str(source) for source in planned if not source.is_file()]
    if missing:
        raise InstallError(f"a shipped file is missing: {missing[0]} (edgeapp was installed "
                           "without its resources/ or packaging/ folder: install it from a "
                           "checkout, pip install -e .)")
    written = []
    for source, target in planned.items():
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            if source.suffix == ".desktop":
                target.write_text(desktop_entry(source.read_text(encoding="utf-8"), launcher),
                                  encoding="utf-8")
            else:
                shutil.copyfile(source, target)
        except OSError as exc:
            raise InstallError(f"cannot write {target}: {exc.strerror or exc}") from exc
        written.append(target)
    _refresh_caches(home)
    return Installed(home, written, launcher)


def uninstall(home: Path | None = None) -> list[Path]:
    """Remove what ``install`` writes (whatever is there of it); return the removed files."""
    _require_freedesktop()
    home = home or data_home()
    removed = []
    for target in planned_files(home).values():
        try:
            target.unlink()
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise InstallError(f"cannot remove {target}: {exc.strerror or exc}") from exc
        removed.append(target)
    if removed:
        _refresh_caches(home)
    return removed


def _require_freedesktop() -> None:
    if sys.platform.startswith(("linux", "freebsd", "openbsd", "netbsd")):
        return
    raise InstallError(f"--install-desktop installs a freedesktop launcher (Linux, BSD); on "
                       f"{sys.platform} start edgeapp-gui, or the one-folder app's "
                       "edgeapp-gui, from a shortcut")


def _refresh_caches(home: Path) -> None:
    """Update the caches desktops read, where they exist: a stale icon cache hides new icons."""
    commands = []
    if shutil.which("update-desktop-database"):
        commands.append(["update-desktop-database", "--quiet", str(home / "applications")])
    hicolor = home / "icons" / "hicolor"
    if (hicolor / "icon-theme.cache").exists() and shutil.which("gtk-update-icon-cache"):
        commands.append(["gtk-update-icon-cache", "--quiet", "--force", "--ignore-theme-index",
                         str(hicolor)])
    for command in commands:  # a cache that fails to update is rebuilt at the next login
        subprocess.run(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=30, check=False)
