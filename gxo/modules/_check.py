"""Check third-party modules' parameters in a short-lived worker process.

Why a module of its own: the parent (``gxo validate``, the loader of every run) never imports
module code it does not own (DESIGN §2, §15): a third-party module's import may be slow, have
side effects or crash. So :func:`check_in_worker` starts ``python -m gxo.modules._check``,
sends it every (type, params) pair as msgpack on stdin, and reads one answer per pair on
stdout: the :class:`~gxo.modules._params.ParamIssue` list, or the reason the module could
not be loaded. The child imports the modules and runs :func:`check_params`; nothing else.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec

from gxo.modules._params import ParamIssue, check_params

__all__ = ["Answer", "Request", "check_in_worker", "check_one"]

#: How long the checking process may take before the check is given up (seconds).
TIMEOUT = 120.0


class Request(msgspec.Struct, frozen=True, array_like=True):
    """One task's module type and unrendered params."""

    type: str
    params: Any


class _Job(msgspec.Struct, frozen=True, array_like=True):
    """What the child is sent: the parent's ``sys.path`` (so it finds the modules the parent
    and its workers would find, even on a path added at run time), the requests, and the
    module types given in code (type name -> ``"pkg.mod:Class"``, ``gxo.run(modules=...)``)."""

    path: list[str]
    requests: list[Request]
    modules: dict[str, str] = {}


class Answer(msgspec.Struct, frozen=True, array_like=True):
    """The issues of one request, or ``error`` when its module could not be loaded."""

    issues: list[ParamIssue] = []
    error: str = ""


def check_one(request: Request, modules: Mapping[str, str] | None = None) -> Answer:
    """Load the module (in this process; ``modules`` as for
    :func:`~gxo.modules.registry.load_module`) and check the params against its ``Params``."""
    from gxo.errors import ModuleLookupError
    from gxo.modules.registry import load_module

    try:
        module_cls = load_module(request.type, modules)
    except ModuleLookupError as exc:
        return Answer(error=str(exc))
    return Answer(issues=check_params(module_cls.Params, request.params))


def check_in_worker(
    requests: Sequence[Request], modules: Mapping[str, str] | None = None
) -> list[Answer]:
    """Check ``requests`` in a child process (``modules``: the types given in code, as the
    workers get them); raises ``RuntimeError`` when it fails.

    The child is reaped before this returns (``subprocess.run``), on success, failure or
    timeout alike.
    """
    import subprocess  # only for a module gxo does not own: off every run's start-up

    payload = msgspec.msgpack.encode(_Job(list(sys.path), list(requests), dict(modules or {})))
    try:
        done = subprocess.run(
            [sys.executable, "-m", "gxo.modules._check"],
            input=payload,
            capture_output=True,
            timeout=TIMEOUT,
            check=False,
            env={**os.environ, "PYTHONSAFEPATH": "1"},
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RuntimeError(f"the checking process could not run: {exc}") from None
    if done.returncode != 0:
        tail = done.stderr.decode("utf-8", "replace").strip().splitlines()[-3:]
        raise RuntimeError(
            f"the checking process exited with {done.returncode}: {' | '.join(tail)}"
        )
    try:
        answers = msgspec.msgpack.decode(done.stdout, type=list[Answer])
    except msgspec.DecodeError as exc:
        raise RuntimeError(f"the checking process answered garbage: {exc}") from None
    if len(answers) != len(requests):
        raise RuntimeError("the checking process answered the wrong number of requests")
    return answers


def main() -> int:
    """Read requests on stdin, write answers on stdout (msgpack)."""
    job = msgspec.msgpack.decode(sys.stdin.buffer.read(), type=_Job)
    sys.path[:] = job.path
    # A module that prints while it is imported must not corrupt the answer: fd 1 goes to
    # stderr while modules load, and the answer is written to a copy of the original.
    answer_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    answers = [check_one(request, job.modules) for request in job.requests]
    with os.fdopen(answer_fd, "wb") as out:
        out.write(msgspec.msgpack.encode(answers))
    return 0


if __name__ == "__main__":
    sys.exit(main())
