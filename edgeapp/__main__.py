"""``python -m edgeapp``: the same as the ``edgeapp`` command."""

from __future__ import annotations

import sys

from edgeapp.cli import main

if __name__ == "__main__":
    sys.exit(main())
