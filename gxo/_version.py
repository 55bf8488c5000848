"""The gxo version, read by packaging and by ``gxo --version``."""

__version__ = "0.1.0"
