"""The reasons vocabulary: every reason gxo produces has an entry, and the retry policy reads it.

The collector walks gxo's source (not its docs) for string literals in *reason positions*:
a ``reason=`` keyword, an assignment to or comparison with a name ending in ``reason``, a
class attribute ``reason``, a ``(Status.X, "reason")`` pair, or the reason argument of the
calls that take one positionally. f-strings count by their literal head
(``f"worker_signaled({name})"`` is ``worker_signaled``).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import gxo
from gxo import reasons
from gxo.config.model import RetryPolicy
from gxo.scheduler.policy import should_retry

GXO = Path(gxo.__file__).parent
_NAME = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)+$")
#: Callables whose positional argument at this index is a reason.
_POSITIONAL = {
    "Kill": 1,
    "Lost": 1,
    "LostInput": 1,
    "interrupt": 0,
    "_attempt_failed": 1,
    "_instance_done": 2,
    "_end_task": 2,
    "format_reason": 0,
}


def _heads(node: ast.AST) -> list[str]:
    """The reason base names a node may produce."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [reasons.base_name(node.value)]
    if isinstance(node, ast.JoinedStr) and node.values:
        first = node.values[0]
        if isinstance(first, ast.Constant) and isinstance(first.value, str):
            return [reasons.base_name(first.value)]
        return []
    if isinstance(node, ast.Tuple | ast.List | ast.Set):
        return [h for elt in node.elts for h in _heads(elt)]
    if isinstance(node, ast.IfExp):
        return _heads(node.body) + _heads(node.orelse)
    return []


def _is_reason_name(node: ast.AST) -> bool:
    name = node.id if isinstance(node, ast.Name) else getattr(node, "attr", "")
    return isinstance(name, str) and name.endswith("reason") and name != "kill_reason"


def collect(tree: ast.AST) -> set[str]:
    """Every reason base name produced in ``tree``."""
    found: set[str] = set()
    for node in ast.walk(tree):
        values: list[ast.AST] = []
        keyword = isinstance(node, ast.keyword) and (node.arg or "").endswith("reason")
        assigned = isinstance(node, ast.Assign) and any(_is_reason_name(t) for t in node.targets)
        if keyword or assigned:
            values.append(node.value)  # type: ignore[attr-defined]
        elif isinstance(node, ast.Assign) and isinstance(node.value, ast.Tuple):
            for target in node.targets:  # message, reason = "...", f"nonzero_exit({code})"
                if isinstance(target, ast.Tuple) and len(target.elts) == len(node.value.elts):
                    values += [
                        v
                        for t, v in zip(target.elts, node.value.elts, strict=True)
                        if _is_reason_name(t)
                    ]
        elif isinstance(node, ast.AnnAssign) and _is_reason_name(node.target) and node.value:
            values.append(node.value)
        elif isinstance(node, ast.Compare) and (
            _is_reason_name(node.left) or any(_is_reason_name(c) for c in node.comparators)
        ):
            values += [node.left, *node.comparators]
        elif isinstance(node, ast.Tuple) and len(node.elts) >= 2:
            for first, second in zip(node.elts, node.elts[1:], strict=False):
                if isinstance(first, ast.Attribute) and getattr(first.value, "id", "") == "Status":
                    values.append(second)
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            index = _POSITIONAL.get(name)
            if index is not None and len(node.args) > index:
                values.append(node.args[index])
        for value in values:
            found.update(h for h in _heads(value) if _NAME.match(h))
    return found


def produced() -> dict[str, list[str]]:
    """Base name -> the files that produce it."""
    where: dict[str, list[str]] = {}
    for path in sorted(GXO.rglob("*.py")):
        if path.name == "reasons.py":
            continue
        for name in collect(ast.parse(path.read_text(), str(path))):
            where.setdefault(name, []).append(str(path.relative_to(GXO)))
    return where


def test_every_produced_reason_is_in_the_vocabulary() -> None:
    unknown = {n: files for n, files in produced().items() if n not in reasons.REASONS}
    assert not unknown, f"reasons produced without an entry in gxo/reasons.py: {unknown}"


def test_the_collector_finds_reasons_in_every_position() -> None:
    source = """
kill = Kill(3, "timed_out")
x = f(reason="template_error")
if reason == "secret_missing": pass
class E: reason = "stream_truncated"
pair = (Status.SKIPPED, "when_false")
lost = format_reason("worker_signaled", name)
message, reason = "exited", f"nonzero_exit({code})"
self._end_task(r, Status.FAILED, "invented_here", "", now)
"""
    assert collect(ast.parse(source)) == {
        "timed_out",
        "template_error",
        "secret_missing",
        "stream_truncated",
        "when_false",
        "worker_signaled",
        "nonzero_exit",
        "invented_here",
    }
    names = produced()
    for known in ("timed_out", "worker_signaled", "worker_exited", "nonzero_exit", "bad_params"):
        assert known in names, known


def test_format_reason_refuses_a_name_without_an_entry() -> None:
    assert reasons.format_reason("nonzero_exit", 2) == "nonzero_exit(2)"
    with pytest.raises(KeyError, match=r"add it to gxo\.reasons\.REASONS"):
        reasons.format_reason("no_such_reason")


@pytest.mark.parametrize("name", sorted(reasons.REASONS))
def test_policy_retries_exactly_the_retriable_reasons(name: str) -> None:
    policy = RetryPolicy(attempts=3)
    entry = reasons.REASONS[name]
    reason = f"{name}(X)" if entry.arg else name
    assert should_retry(policy, 1, reason, 0) is entry.retriable


def test_a_module_can_say_do_not_retry_a_reason_that_is_retriable() -> None:
    policy = RetryPolicy(attempts=3)
    assert should_retry(policy, 1, "module_failed", 0)
    assert not should_retry(policy, 1, "module_failed", 0, retry=False)
    assert should_retry(policy, 1, "my_own_reason", 0)  # third-party reasons: retriable
