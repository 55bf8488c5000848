"""gxo: run YAML playbooks as a DAG of crash-isolated worker processes."""

from gxo._version import __version__

__all__ = ["__version__"]
