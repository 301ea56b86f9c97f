"""The ``edgeapp`` command: global options, the mode dispatcher, errors as exit codes.

Adding a mode:
- a sub-command (``edgeapp NAME …``): a module under ``edgeapp/commands/`` with
  ``add_parser(subparsers)`` and ``run(args) -> int``, plus one line in ``COMMANDS``;
- a flag mode (``edgeapp --worker …``): a module with ``HELP`` (one line), an optional
  ``METAVAR`` when the flag takes a value (``--station NAME``), an optional
  ``add_arguments(parser)`` for its own options, and ``run(args) -> int``, plus one line in
  ``FLAG_MODES``.
Modules are imported when the parser is built. ``args.config`` is the ``--config`` path and
``args.cfg`` the loaded, validated ``Config`` (the demo defaults without ``--config``).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import sys
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, NoReturn

from edgeapp import __version__
from edgeapp.errors import EdgeAppError, UsageError

COMMANDS: list[str] = [
    "edgeapp.commands.config_cmd",
    "edgeapp.commands.record_cmd",
    "edgeapp.commands.bench_cmd",
    "edgeapp.commands.keys_cmd",
    "edgeapp.commands.results_cmd",
    "edgeapp.commands.models_cmd",
]

# "--flag" -> module. A flag mode exists here only once its module is built.
FLAG_MODES: dict[str, str] = {
    "--worker": "edgeapp.commands.worker_cmd",
    "--headless": "edgeapp.commands.headless_cmd",
    "--station": "edgeapp.commands.station_cmd",
    "--install-desktop": "edgeapp.commands.install_desktop_cmd",
    "--uninstall-desktop": "edgeapp.commands.uninstall_desktop_cmd",
}

EXIT_INTERNAL_ERROR = 70  # sysexits EX_SOFTWARE: a bug, not the user's input
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it

log = logging.getLogger("edgeapp")


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are a UsageError, so main prints one line."""

    def error(self, message: str) -> NoReturn:
        mode = self.prog.removeprefix("edgeapp").strip()
        where = f"{mode}: " if mode else ""
        raise UsageError(f"{where}{message} (see '{self.prog} --help')")


@dataclass
class Modes:
    """The module that runs each mode: by sub-command name, and by flag (with its dest)."""

    commands: dict[str, ModuleType] = field(default_factory=dict)
    flags: dict[str, tuple[str, ModuleType]] = field(default_factory=dict)


def build_parser() -> tuple[argparse.ArgumentParser, Modes]:
    """The full parser and the modes it knows."""
    parser = _Parser(
        prog="edgeapp",
        description="Check pick-up-counter orders with cameras, YOLO11 on OpenVINO and a VLM.",
        epilog=_exit_codes_text(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", metavar="FILE", type=Path,
                        help="config file (YAML); checked before anything starts; "
                             "default: the built-in demo")
    parser.add_argument("--debug", action="store_true",
                        help="log debug messages and show tracebacks of errors")
    parser.add_argument("--version", action="version", version=f"edgeapp {__version__}")
    modes = Modes()
    group = parser.add_mutually_exclusive_group() if FLAG_MODES else parser
    for flag, module_name in FLAG_MODES.items():
        module = importlib.import_module(module_name)
        metavar = getattr(module, "METAVAR", None)  # a flag that takes a value
        action = (group.add_argument(flag, metavar=metavar, help=module.HELP) if metavar
                  else group.add_argument(flag, action="store_true", help=module.HELP))
        modes.flags[flag] = (action.dest, module)
        adder = getattr(module, "add_arguments", None)
        if adder is not None:
            adder(parser)
    subparsers = parser.add_subparsers(dest="command", metavar="MODE", title="modes")
    for module_name in COMMANDS:
        module = importlib.import_module(module_name)
        before = set(subparsers.choices)
        module.add_parser(subparsers)
        for name in set(subparsers.choices) - before:
            modes.commands[name] = module
    return parser, modes


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``edgeapp`` with ``argv`` (default: the process arguments); return the exit code."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args_list
    try:
        parser, modes = build_parser()
        args = parser.parse_args(args_list)
        debug = args.debug
        logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        from edgeapp.config import load_config

        args.cfg = load_config(args.config)
        return _dispatch(args, modes)
    except SystemExit as exc:  # --help, --version, or a mode that calls sys.exit
        return _system_exit_code(exc)
    except KeyboardInterrupt:
        print("edgeapp: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader of stdout went away (`edgeapp config --print-default | head`): stop
        # quietly, and keep Python from complaining about the flush at exit.
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except EdgeAppError as exc:
        if debug:
            traceback.print_exc()
        print(f"edgeapp: {_one_line(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except Exception as exc:  # a bug: one line for the user, the traceback with --debug
        if debug:
            traceback.print_exc()
        hint = "" if debug else " (run again with --debug to see the traceback)"
        print(f"edgeapp: internal error: {type(exc).__name__}: {_one_line(str(exc))}{hint}",
              file=sys.stderr)
        return EXIT_INTERNAL_ERROR


def _dispatch(args: argparse.Namespace, modes: Modes) -> int:
    flags = [flag for flag, (dest, _) in modes.flags.items() if getattr(args, dest)]
    if flags and args.command:
        raise UsageError(f"{flags[0]} and the {args.command} mode cannot be used "
                         "together (see 'edgeapp --help')")
    if "--headless" not in flags and (flags or args.command):
        from edgeapp.commands import metrics_opts

        metrics_opts.refuse(args)  # accepted only where it works: --headless and the window
    if args.command:
        module = modes.commands[args.command]
    elif flags:
        module = modes.flags[flags[0]][1]
    else:
        return run_without_mode(args)
    return int(module.run(args) or 0)


def run_without_mode(args: argparse.Namespace) -> int:
    """``edgeapp`` with no mode: the operator window on ``--config`` (default: the demo).

    The UI is imported only here, so every other mode (``--worker`` above all) runs without Qt.
    """
    from edgeapp.commands import metrics_opts
    from edgeapp.ui.app import run

    return run(args.cfg, args.config, metrics_opts.window_option(args))


def _exit_codes_text() -> str:
    """The exit codes, from the error classes themselves, for ``--help``."""
    rows = [("0", "done"), ("1", "a mode failed")]
    stack: list[Any] = list(EdgeAppError.__subclasses__())
    errors = []
    while stack:
        cls = stack.pop()
        errors.append(cls)
        stack.extend(cls.__subclasses__())
    for cls in sorted(errors, key=lambda c: c.exit_code):
        text = (cls.__doc__ or cls.__name__).strip().rstrip(".")
        rows.append((str(cls.exit_code), text[:1].lower() + text[1:]))
    rows += [(str(EXIT_INTERNAL_ERROR), "internal error (a bug; --debug shows the traceback)"),
             (str(EXIT_INTERRUPTED), "interrupted (Ctrl+C)")]
    return "exit codes:\n" + "\n".join(f"  {code:>3}  {text}" for code, text in rows)


def _one_line(text: str) -> str:
    return " ".join(text.split()) or "(no message)"


def _system_exit_code(exc: SystemExit) -> int:
    if exc.code is None or isinstance(exc.code, int):
        return int(exc.code or 0)
    print(f"edgeapp: {exc.code}", file=sys.stderr)
    return 1
