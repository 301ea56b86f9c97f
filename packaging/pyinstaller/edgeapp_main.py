"""The one-folder app's entry point: the ``edgeapp`` command, plus what a frozen program needs.

A frozen program has no Python interpreter to start children with, only itself:
- ``multiprocessing`` (the station processes, spawned) re-runs it with its own arguments, which
  ``freeze_support`` recognises and serves;
- the engine starts its local workers, and the benchmarks their helpers, as
  ``sys.executable -m MODULE …``: here ``-m MODULE`` runs that module of the app as Python
  would, so the same code starts the same children frozen or not.
"""

from __future__ import annotations

import multiprocessing
import runpy
import sys


def main() -> int:
    """Serve a multiprocessing child or a ``-m MODULE`` child, or run the ``edgeapp`` command."""
    multiprocessing.freeze_support()
    if len(sys.argv) >= 3 and sys.argv[1] == "-m":
        module = sys.argv[2]
        sys.argv = [sys.argv[0], *sys.argv[3:]]
        runpy.run_module(module, run_name="__main__", alter_sys=True)
        return 0
    # The same as the pip-installed ``edgeapp-gui``: ``edgeapp``, whose output goes to a log
    # file when the executable has no console (the Windows/macOS GUI executable).
    from edgeapp.launcher import gui_main

    return gui_main()


if __name__ == "__main__":
    sys.exit(main())
