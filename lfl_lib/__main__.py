"""``python -m lfl_lib``: see :mod:`lfl_lib.cli`."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
