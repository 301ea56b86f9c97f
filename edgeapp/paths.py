"""Where edgeapp finds its shipped resources and keeps the operator's data.

Shipped (read-only): ``resources/`` — the demo orders and inventory, the detector models, the
icon; ``packaging/linux/`` — the desktop entry and metainfo.
Per user (written): the data folder — results database, evidence frames, CURVE keys, logs.
Nothing here creates a folder; the part that writes into one creates it.
"""

from __future__ import annotations

import sys
from pathlib import Path

APP_NAME = "edgeapp"


def resources_dir() -> Path:
    """The shipped ``resources/`` folder (next to the ``edgeapp`` package in a checkout)."""
    return _shipped_root() / "resources"


def desktop_files_dir() -> Path:
    """The desktop entry and AppStream metainfo that ``edgeapp --install-desktop`` installs."""
    return _shipped_root() / "packaging" / "linux"


def _shipped_root() -> Path:
    """The folder that holds ``resources/`` and ``packaging/``: the checkout, or, in the
    one-folder app (``packaging/pyinstaller/edgeapp.spec``), its ``_internal`` folder, which
    the frozen program knows as ``sys._MEIPASS``. The one place that knows where shipped
    files live: packaging changes this function only."""
    if getattr(sys, "frozen", False):
        return Path(sys._MEIPASS)  # type: ignore[attr-defined]
    return Path(__file__).resolve().parent.parent


def demo_orders_path() -> Path:
    """The demo orders file the built-in demo uses."""
    return resources_dir() / "demo" / "orders.json"


def demo_inventory_path() -> Path:
    """The demo inventory file the built-in demo uses."""
    return resources_dir() / "demo" / "inventory.json"


def icons_dir() -> Path:
    """The application icon: ``edgeapp.svg``, ``edgeapp-SIZE.png`` (16-512), ``edgeapp.ico``."""
    return resources_dir() / "icons"


def app_icon_path() -> Path:
    """The application icon (SVG) the window shows."""
    return icons_dir() / "edgeapp.svg"


def shipped_models_dir() -> Path:
    """The folder of the shipped YOLO11 OpenVINO models."""
    return resources_dir() / "models"


def user_data_dir() -> Path:
    """The platform's per-user data folder for edgeapp (honours ``XDG_DATA_HOME`` on Linux)."""
    # Imported here so that `import edgeapp.config` needs only the standard library.
    import platformdirs

    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def default_keys_dir(data_dir: Path) -> Path:
    """Where ``edgeapp keys`` writes and the distributed parts read CURVE keys by default."""
    return data_dir / "keys"


def evidence_dir(data_dir: Path) -> Path:
    """Where the frames selected for each order are saved as evidence."""
    return data_dir / "evidence"


def logs_dir(data_dir: Path) -> Path:
    """Where log files go."""
    return data_dir / "logs"
