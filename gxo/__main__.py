"""``python -m gxo``: the only place in gxo that calls ``sys.exit``."""

import sys

from gxo.cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
