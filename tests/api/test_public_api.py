"""The public surface of ``gxo`` is a conscious decision: this list must be edited with it."""

from __future__ import annotations

import subprocess
import sys

import pytest

import gxo
import gxo.modules

EXPECTED = [
    "DaskSettings",
    "Event",
    "EventBus",
    "ExecutionReport",
    "GxoError",
    "InternalError",
    "MemoryStateStore",
    "PartialRun",
    "Playbook",
    "PlaybookError",
    "RunResult",
    "SecretsConfig",
    "StateStore",
    "TaskResult",
    "UsageError",
    "__version__",
    "load",
    "run",
    "validate",
]

EXPECTED_SDK = [
    "Module",
    "ModuleContext",
    "ModuleError",
    "NoParams",
    "ParamsError",
    "convert_params",
    "exclusive",
]


def test_all_is_the_expected_list() -> None:
    # Adding or removing a public name? Update EXPECTED in the same change, on purpose.
    assert gxo.__all__ == EXPECTED


def test_all_is_sorted() -> None:
    assert gxo.__all__ == sorted(gxo.__all__)


@pytest.mark.parametrize("name", EXPECTED)
def test_every_public_name_resolves(name: str) -> None:
    assert getattr(gxo, name) is not None


def test_dir_lists_the_public_names() -> None:
    assert dir(gxo) == gxo.__all__


def test_unknown_attribute_raises() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = gxo.nope  # type: ignore[attr-defined]


def test_module_sdk_surface() -> None:
    assert gxo.modules.__all__ == EXPECTED_SDK


def test_import_gxo_is_cheap() -> None:
    """``import gxo`` imports nothing else of gxo (the CLI starts the forkserver first)."""
    code = "import sys, gxo; print(sorted(m for m in sys.modules if m.startswith('gxo')))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd="/"
    ).stdout
    assert out.strip() == "['gxo', 'gxo._version']"
