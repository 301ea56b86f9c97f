"""The hard boundaries of DESIGN.md §3, checked on whatever files the packages hold today.

- ``edgeapp.engine`` imports no Qt, no pyqtgraph, no torch, no ultralytics: every module is
  imported in a fresh interpreter and ``sys.modules`` is inspected; every file is also
  scanned, so an import inside a function that the first check cannot reach is caught too.
- torch / ultralytics appear only in ``edgeapp/training`` (the ``train`` extra).
- The worker path (``edgeapp.engine.distributed``, ``edgeapp.engine.vision``) needs only
  base dependencies (numpy, opencv, openvino, pyzmq, msgpack, psutil, pyyaml) and the
  standard library: the imports that run at import time are followed through edgeapp's own
  modules.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "edgeapp"
ENGINE = PACKAGE / "engine"

BANNED_IN_ENGINE = {"PySide6", "shiboken6", "PyQt5", "PyQt6", "pyqtgraph", "torch",
                    "ultralytics"}
TRAIN_ONLY = {"torch", "torchvision", "ultralytics"}
WORKER_PACKAGES = ("edgeapp.engine.distributed", "edgeapp.engine.vision")
# DESIGN §3 names numpy, opencv, openvino, pyzmq, msgpack. psutil (worker metrics) and
# yaml (a model folder's metadata.yaml / card.yaml, read by vision.models) are base
# dependencies in pyproject.toml too, so a bare `pip install edgeapp` still has them.
WORKER_ALLOWED = {"numpy", "cv2", "openvino", "zmq", "msgpack", "psutil", "yaml", "edgeapp"}


# --- reading imports ------------------------------------------------------------------------

def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def module_file(name: str) -> Path | None:
    base = ROOT.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def python_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.py") if "__pycache__" not in p.parts)


def absolute(node: ast.ImportFrom, path: Path) -> str:
    """The absolute module an ``ImportFrom`` reads from (relative imports resolved)."""
    if not node.level:
        return node.module or ""
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    base = package[: len(package) - node.level + 1]
    return ".".join([*base, node.module] if node.module else base)


def imported_names(node: ast.AST, path: Path) -> Iterator[str]:
    """Every module an import statement (or ``import_module("x")`` call) may load."""
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom):
        source = absolute(node, path)
        yield source
        yield from (f"{source}.{alias.name}" for alias in node.names)
    elif (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)
          and isinstance(node.args[0].value, str)
          and ((isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
               or (isinstance(node.func, ast.Name)
                   and node.func.id in ("__import__", "import_module")))):
        yield node.args[0].value


def all_imports(path: Path) -> Iterator[tuple[int, str]]:
    """Every import anywhere in the file, with its line."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        for name in imported_names(node, path):
            yield getattr(node, "lineno", 0), name


def import_time_imports(path: Path) -> Iterator[tuple[int, str]]:
    """The imports that run when the module is imported (not in functions, not TYPE_CHECKING)."""

    def visit(statements: list[ast.stmt]) -> Iterator[tuple[int, str]]:
        for stmt in statements:
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            if isinstance(stmt, (ast.Import, ast.ImportFrom)):
                for name in imported_names(stmt, path):
                    yield stmt.lineno, name
                continue
            if isinstance(stmt, ast.If) and "TYPE_CHECKING" in ast.unparse(stmt.test):
                yield from visit(stmt.orelse)
                continue
            for block in ("body", "orelse", "finalbody"):  # if / try / with / class bodies
                yield from visit(getattr(stmt, block, None) or [])
            for handler in getattr(stmt, "handlers", None) or []:
                yield from visit(handler.body)

    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    yield from visit(tree.body)


def root(name: str) -> str:
    return name.split(".")[0]


# --- the engine: no Qt, pyqtgraph, torch, ultralytics ---------------------------------------

_IMPORT_ALL = """
import importlib, json, pkgutil, sys
failed = []
import edgeapp.engine as engine
names = ["edgeapp.engine"] + [m.name for m in pkgutil.walk_packages(
    engine.__path__, "edgeapp.engine.", onerror=lambda name: failed.append(name))]
for name in names:
    try:
        importlib.import_module(name)
    except Exception as exc:
        failed.append(f"{name}: {type(exc).__name__}: {exc}")
print(json.dumps({"imported": names, "failed": failed,
                  "loaded": sorted({m.split(".")[0] for m in sys.modules})}))
"""


def test_importing_every_engine_module_loads_no_gui_or_training_library():
    proc = subprocess.run([sys.executable, "-c", _IMPORT_ALL], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])

    assert not report["failed"], f"engine modules that do not import: {report['failed']}"
    expected = {module_name(p) for p in python_files(ENGINE)}
    assert expected <= set(report["imported"]), "the walk missed engine modules"
    loaded = BANNED_IN_ENGINE & set(report["loaded"])
    assert not loaded, f"importing edgeapp.engine loaded {sorted(loaded)} (DESIGN §3)"


def test_no_engine_file_imports_a_gui_or_training_library_anywhere():
    found = [f"{path.relative_to(ROOT)}:{line} imports {name}"
             for path in python_files(ENGINE) for line, name in all_imports(path)
             if root(name) in BANNED_IN_ENGINE]
    assert not found, "the engine must stay headless and torch-free:\n" + "\n".join(found)


def test_torch_and_ultralytics_appear_only_in_training():
    found = [f"{path.relative_to(ROOT)}:{line} imports {name}"
             for path in python_files(PACKAGE) if "training" not in path.relative_to(PACKAGE).parts
             for line, name in all_imports(path) if root(name) in TRAIN_ONLY]
    assert not found, "torch/ultralytics belong to the train extra:\n" + "\n".join(found)


# --- the worker path: numpy, cv2, openvino, zmq, msgpack, psutil, stdlib --------------------

def worker_path_violations() -> list[str]:
    """Import-time imports outside the allow-list, following edgeapp modules transitively."""
    start = [module_name(p) for pkg in WORKER_PACKAGES
             for p in python_files(ROOT.joinpath(*pkg.split(".")))]
    via: dict[str, str | None] = {}
    todo: list[tuple[str, str | None]] = [(name, None) for name in start]
    bad: list[str] = []
    while todo:
        name, parent = todo.pop()
        if name in via:
            continue
        via[name] = parent
        path = module_file(name)
        if path is None:
            continue  # `from pkg import function`: the name is not a module
        parts = name.split(".")
        # Importing a module runs its packages' __init__ first.
        todo += [(".".join(parts[:i]), name) for i in range(1, len(parts))]
        for line, imported in import_time_imports(path):
            top = root(imported)
            if top == "edgeapp":
                todo.append((imported, name))
            elif top not in WORKER_ALLOWED and top not in sys.stdlib_module_names:
                chain, step = [], parent
                while step is not None:
                    chain.append(step)
                    step = via[step]
                reached = f" (reached from {' <- '.join(chain)})" if chain else ""
                bad.append(f"{path.relative_to(ROOT)}:{line} imports {imported}{reached}")
    return bad


def test_the_worker_path_imports_only_the_base_libraries():
    bad = worker_path_violations()
    assert not bad, ("the worker path may import only " + ", ".join(sorted(WORKER_ALLOWED))
                     + " and the standard library at import time; import others inside the "
                     "function that needs them:\n" + "\n".join(bad))


def test_the_worker_path_check_can_fail(tmp_path, monkeypatch):
    # Given a vision module that imports requests at import time, behind an edgeapp module
    pkg = tmp_path / "edgeapp" / "engine"
    for folder in (pkg / "vision", pkg / "distributed", pkg / "util"):
        folder.mkdir(parents=True)
        (folder / "__init__.py").write_text("")
    (tmp_path / "edgeapp" / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "util" / "http.py").write_text(
        "from typing import TYPE_CHECKING\nimport json\nif TYPE_CHECKING:\n    import torch\n"
        "try:\n    import requests\nexcept ImportError:\n    pass\n"
        "def later():\n    import redis\n")
    (pkg / "vision" / "reader.py").write_text("import numpy\nfrom ..util import http\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)

    # When the closure is checked
    bad = worker_path_violations()

    # Then only the import-time third-party import is reported, with the path to it
    assert len(bad) == 1, bad
    assert "util/http.py:6 imports requests" in bad[0]
    assert "edgeapp.engine.vision.reader" in bad[0]


@pytest.mark.parametrize("package", WORKER_PACKAGES)
def test_the_worker_packages_exist(package):
    assert module_file(package) is not None, f"{package} is gone: update WORKER_PACKAGES"
