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
    "ModuleRegistry",
    "PartialRun",
    "Playbook",
    "PlaybookError",
    "RunHandle",
    "RunResult",
    "SecretProvider",
    "SecretsConfig",
    "StateStore",
    "TaskResult",
    "UsageError",
    "__version__",
    "load",
    "run",
    "start",
    "validate",
]

EXPECTED_SDK = [
    "Module",
    "ModuleContext",
    "ModuleError",
    "ModuleRegistry",
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


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("gxo.config.InputLimits", "<class 'gxo.config.limits.InputLimits'>"),
        ("gxo.events.InstanceStarted", "<class 'gxo.events.InstanceStarted'>"),
        ("gxo.report.task_instances.__name__", "task_instances"),
        ("gxo.template.set_render_budget.__name__", "set_render_budget"),
        ("gxo.modules.Module.__name__", "Module"),
        ("gxo.secrets.EnvProvider.__name__", "EnvProvider"),
    ],
)
def test_documented_subpackages_are_reachable_after_a_bare_import_gxo(
    expression: str, expected: str
) -> None:
    """docs/api.md writes ``limits=gxo.config.InputLimits(...)``: an AttributeError unless
    something had imported gxo.config first. A fresh interpreter: this one has them all."""
    code = f"import gxo; print({expression})"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == expected


def test_module_sdk_surface() -> None:
    assert gxo.modules.__all__ == EXPECTED_SDK


def test_import_gxo_is_cheap() -> None:
    """``import gxo`` imports nothing else of gxo (the CLI starts the forkserver first)."""
    code = "import sys, gxo; print(sorted(m for m in sys.modules if m.startswith('gxo')))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd="/"
    ).stdout
    assert out.strip() == "['gxo', 'gxo._version']"
