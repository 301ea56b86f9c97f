"""The sub-commands of ``edgeapp``, one module each.

A command module has ``add_parser(subparsers)`` (register its sub-parser and options) and
``run(args) -> int`` (the exit code), and is listed in ``edgeapp.cli.COMMANDS``. It imports
heavy libraries inside ``run``, so ``edgeapp --help`` stays fast. ``args.cfg`` holds the
validated ``Config``; errors are raised as ``EdgeAppError`` subclasses, never printed.
"""
