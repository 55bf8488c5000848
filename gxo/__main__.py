"""``python -m gxo``: the same as the ``gxo`` console script."""

from gxo.cli import console_main

if __name__ == "__main__":
    console_main()
