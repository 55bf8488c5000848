"""Load a playbook: text or data → a validated :class:`~gxo.config.model.Playbook`.

The stages, in order; each adds to one list of problems, and the load raises
:class:`~gxo.errors.PlaybookError` with all of them, sorted by position, at the end:

1. read the file (size limit first) and decode UTF-8;
2. YAML → data with node positions (:mod:`gxo.config.yaml_source`); a syntax error or a limit
   hit stops here, other YAML problems (tags, duplicate or non-string keys) do not;
3. the JSON schema (:mod:`gxo.config.schema`), every violation;
4. ``schemaVersion`` (SemVer, major 1);
5. build the model (:mod:`gxo.config.build`), leaving out values the schema rejected;
6. logical checks (:mod:`gxo.config.checks`) and template checks
   (:mod:`gxo.config.references`);
7. the dependency graph (:func:`gxo.dag.analyse`): each cycle is a problem at its first task
   (also when other problems, duplicate names included, are found);
8. when the installed module types are given: each task's ``params`` against its module's
   ``Params`` (:mod:`gxo.config.params`).

Before the schema, a playbook with more tasks than ``limits.max_tasks`` is refused at once.
Warnings (an unknown module parameter without ``strict``) are logged on the ``gxo.config``
logger when the load succeeds.

Imports: ``gxo.dag`` reads the model only for types, so this module can use it at import
time without a cycle (``errors`` ← ``template`` ← ``config.model`` ← ``dag`` ← ``config.load``).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Collection, Mapping
from typing import Any

import msgspec

from gxo.config.build import build_playbook
from gxo.config.checks import check_playbook, check_schema_version, check_stream_groups
from gxo.config.limits import DEFAULT_LIMITS, InputLimits, describe_bytes
from gxo.config.model import Playbook, Task
from gxo.config.params import check_params
from gxo.config.problems import Path, Problems, describe_kind, format_path
from gxo.config.references import check_templates
from gxo.config.schema import validate_schema
from gxo.config.yaml_source import MAX_BYTES, MAX_DEPTH, parse_yaml
from gxo.dag.build import STATE_ROOT, Plan, TaskTemplates, analyse, gc_paused
from gxo.dag.graph import Edge, Graph
from gxo.errors import Location

__all__ = [
    "load_plan",
    "load_plan_data",
    "load_plan_text",
    "load_playbook",
    "load_playbook_data",
    "load_playbook_text",
]


def load_playbook(
    path: str | os.PathLike[str],
    *,
    overrides: Mapping[str, Any] | None = None,
    known_types: Collection[str] | None = None,
    strict: bool = False,
    limits: InputLimits = DEFAULT_LIMITS,
) -> Playbook:
    """Read, validate and build the playbook in the file at ``path``.

    ``overrides`` (from ``--var k=v``) replace or add top-level ``vars``; ``known_types``, when
    given, is the set of installed module types: an unknown ``type`` is then a problem, and
    each task's ``params`` are checked against its module's ``Params``
    (:mod:`gxo.config.params`; an unknown parameter is a warning, a problem with ``strict``).
    ``limits`` bounds the size of one value and the number of tasks.
    Raises :class:`~gxo.errors.PlaybookError` listing every problem found.
    """
    return load_plan(
        path, overrides=overrides, known_types=known_types, strict=strict, limits=limits
    )[0]


def load_playbook_text(
    text: str,
    *,
    source: str = "<string>",
    overrides: Mapping[str, Any] | None = None,
    known_types: Collection[str] | None = None,
    strict: bool = False,
    limits: InputLimits = DEFAULT_LIMITS,
) -> Playbook:
    """Like :func:`load_playbook`, for YAML text; ``source`` names it in problems."""
    return load_plan_text(
        text,
        source=source,
        overrides=overrides,
        known_types=known_types,
        strict=strict,
        limits=limits,
    )[0]


def load_playbook_data(
    data: Mapping[str, Any],
    *,
    source: str = "<data>",
    overrides: Mapping[str, Any] | None = None,
    known_types: Collection[str] | None = None,
    strict: bool = False,
    limits: InputLimits = DEFAULT_LIMITS,
) -> Playbook:
    """Like :func:`load_playbook`, for a playbook given as Python data (dicts, lists, scalars).

    The data is copied, so the caller may change it afterwards. Problems have a path but no
    line or column.
    """
    return load_plan_data(
        data,
        source=source,
        overrides=overrides,
        known_types=known_types,
        strict=strict,
        limits=limits,
    )[0]


def _unreadable_hint(source: str, error: OSError) -> str:
    """What to do about a playbook path that cannot be read: the file meant, when one close to
    it exists; the playbooks of a directory given instead of one of them."""
    import errno

    if error.errno == errno.EISDIR:
        try:
            found = sorted(name for name in os.listdir(source) if name.endswith((".yaml", ".yml")))
        except OSError:
            found = []
        if found:
            shown = ", ".join(os.path.join(source, name) for name in found[:5])
            more = f" and {len(found) - 5} more" if len(found) > 5 else ""
            return f"give a playbook file, not a directory: {shown}{more}"
        return "give a playbook file, not a directory"
    if error.errno == errno.ENOENT:
        if source == "-":
            return "'-' is not read as standard input: give /dev/stdin for that"
        directory, name = os.path.split(source)
        try:
            names = [n for n in os.listdir(directory or ".") if n.endswith((".yaml", ".yml"))]
        except OSError:
            return f"check the path: there is no directory {directory!r}"
        import difflib

        close = difflib.get_close_matches(name, names, n=1, cutoff=0.85)
        if close:
            return f"did you mean {os.path.join(directory, close[0])!r}?"
        try:
            where = os.path.abspath(directory or ".")
        except OSError:  # the current directory was removed
            return "check the path: the current directory no longer exists"
        return f"check the path: there is no {name!r} in {where}"
    if error.errno == errno.EACCES:
        return "make the file readable by the user gxo runs as, or run gxo as one who can read it"
    return ""


def load_plan(
    path: str | os.PathLike[str],
    *,
    overrides: Mapping[str, Any] | None = None,
    known_types: Collection[str] | None = None,
    strict: bool = False,
    limits: InputLimits = DEFAULT_LIMITS,
    defaults: Mapping[str, Any] | None = None,
) -> tuple[Playbook, Plan]:
    """:func:`load_playbook`, and the plan (DAG, compiled templates) its validation built."""
    source = os.fspath(path)
    problems = Problems(source)
    try:
        with open(source, "rb") as file:
            size = os.fstat(file.fileno()).st_size
            raw = b"" if size > MAX_BYTES else file.read(MAX_BYTES + 1)
    except OSError as error:
        reason = error.strerror or str(error)
        problems.add((), f"cannot read the playbook: {reason}", _unreadable_hint(source, error))
        raise problems.error() from None
    if size > MAX_BYTES or len(raw) > MAX_BYTES:
        problems.add(
            (),
            f"the playbook is larger than {MAX_BYTES // (1024 * 1024)} MiB",
            "split it, or move large data into files the tasks read",
        )
        raise problems.error()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        column = error.start - (raw.rfind(b"\n", 0, error.start) + 1) + 1
        problems.add_at(
            Location(source, line, column, "$"),
            "the playbook is not UTF-8 text",
            "save the file as UTF-8",
        )
        raise problems.error() from None
    with gc_paused():
        return _from_text(text, source, overrides, known_types, strict, limits, defaults)


def load_plan_text(
    text: str,
    *,
    source: str = "<string>",
    overrides: Mapping[str, Any] | None = None,
    known_types: Collection[str] | None = None,
    strict: bool = False,
    limits: InputLimits = DEFAULT_LIMITS,
    defaults: Mapping[str, Any] | None = None,
) -> tuple[Playbook, Plan]:
    """Like :func:`load_plan`, for YAML text; ``source`` names it in problems."""
    with gc_paused():
        return _from_text(text, source, overrides, known_types, strict, limits, defaults)


def load_plan_data(
    data: Mapping[str, Any],
    *,
    source: str = "<data>",
    overrides: Mapping[str, Any] | None = None,
    known_types: Collection[str] | None = None,
    strict: bool = False,
    limits: InputLimits = DEFAULT_LIMITS,
    defaults: Mapping[str, Any] | None = None,
) -> tuple[Playbook, Plan]:
    """Like :func:`load_plan`, for Python data (see :func:`load_playbook_data`)."""
    with gc_paused():
        return _from_data(data, source, overrides, known_types, strict, limits, defaults)


# The loads run with the cyclic GC paused (see gc_paused). The work is done in these helpers
# so that the YAML data and the position map are freed, by reference counting, when they
# return: the collection that follows the pause then sees only the playbook.


def _from_text(
    text: str,
    source: str,
    overrides: Mapping[str, Any] | None,
    known_types: Collection[str] | None,
    strict: bool,
    limits: InputLimits,
    defaults: Mapping[str, Any] | None = None,
) -> tuple[Playbook, Plan]:
    problems = Problems(source)
    document = parse_yaml(text, problems, limits)
    if document is None:
        raise problems.error()
    return _load(document.data, problems, source, overrides, known_types, strict, limits, defaults)


def _from_data(
    data: Mapping[str, Any],
    source: str,
    overrides: Mapping[str, Any] | None,
    known_types: Collection[str] | None,
    strict: bool,
    limits: InputLimits,
    defaults: Mapping[str, Any] | None = None,
) -> tuple[Playbook, Plan]:
    problems = Problems(source)
    plain = _plain(data, (), problems, limits)
    problems.raise_if_any()
    return _load(plain, problems, source, overrides, known_types, strict, limits, defaults)


def _load(
    data: Any,
    problems: Problems,
    source: str,
    overrides: Mapping[str, Any] | None,
    known_types: Collection[str] | None,
    strict: bool,
    limits: InputLimits,
    defaults: Mapping[str, Any] | None = None,
) -> tuple[Playbook, Plan]:
    _check_task_count(data, problems, limits)
    if defaults and isinstance(data, dict):
        data = _with_defaults(data, defaults)
    bad = validate_schema(data, problems)
    if not isinstance(data, dict):
        raise problems.error()
    version = data.get("schemaVersion")
    if isinstance(version, str) and ("schemaVersion",) not in bad:
        version = check_schema_version(version, problems)
    playbook = build_playbook(
        data,
        source=source,
        schema_version=version if isinstance(version, str) else "",
        overrides=overrides,
        bad=bad,
        problems=problems,
    )
    check_playbook(playbook, problems, known_types)
    templates = check_templates(playbook, problems)
    plan = _check_cycles(playbook, templates, problems)
    if known_types is not None:
        check_params(playbook, problems, known_types, strict=strict)
    problems.log_warnings()
    problems.raise_if_any()
    assert plan is not None  # no problem: the names are unique, so the plan was built
    return playbook, plan


def _check_task_count(data: Any, problems: Problems, limits: InputLimits) -> None:
    """Refuse a playbook with more tasks than the limit before any costly stage."""
    tasks = data.get("tasks") if isinstance(data, dict) else None
    if isinstance(tasks, list) and len(tasks) > limits.max_tasks:
        problems.add(
            ("tasks",),
            f"the playbook has {len(tasks):,} tasks, more than the limit ({limits.max_tasks:,})",
            "split it into several playbooks, move repetition into a 'loop', or raise the "
            "limit with --max-tasks N (limits=InputLimits(max_tasks=...) in the Python API)",
            at="key",
        )
        raise problems.error()


def _check_cycles(
    playbook: Playbook, templates: Mapping[str, TaskTemplates], problems: Problems
) -> Plan | None:
    """The plan, with every dependency cycle reported; None when names are not unique.

    With duplicate names (reported already) the cycles are looked for among the first task
    of each name, so a cycle is still reported together with the other problems.
    """
    first_of: dict[str, Task] = {}
    for task in playbook.tasks:
        first_of.setdefault(task.name, task)
    unique = len(first_of) == len(playbook.tasks)
    plan: Plan | None
    if not unique:
        tasks = tuple(
            msgspec.structs.replace(task, index=position)
            for position, task in enumerate(first_of.values())
        )
        graph = analyse(msgspec.structs.replace(playbook, tasks=tasks), templates).graph
        plan = None
    else:
        plan = analyse(playbook, templates)
        graph = plan.graph
    cycles = graph.find_cycles()
    if not cycles:
        if unique:
            check_stream_groups(playbook, graph, problems, templates)
        return plan
    registers = {name: task.register for name, task in first_of.items()}
    for cycle in cycles:
        first = first_of[cycle[0]]
        problems.add(
            ("tasks", first.index),
            f"dependency cycle: {' -> '.join(cycle)}",
            _cycle_hint(registers, graph, cycle),
        )
    return plan


def _explain(registers: Mapping[str, str | None], edge: Edge) -> str:
    source, target = edge.source, edge.target
    head = f"{edge.kind} edge {source} -> {target}"
    if edge.kind == "register":
        register = registers[source]
        return f"{head} ('{target}' reads '{register}', registered by '{source}')"
    if edge.kind == "status":
        return f"{head} ('{target}' reads {STATE_ROOT}.tasks.{source})"
    if edge.kind == "stream":
        return f"{head} ('{target}' lists '{source}' in stream_inputs)"
    return f"{head} ('{target}' lists '{source}' in depends_on)"


def _cycle_hint(registers: Mapping[str, str | None], graph: Graph, cycle: list[str]) -> str:
    steps: list[str] = []
    for source, target in itertools.pairwise(cycle):
        steps.extend(
            _explain(registers, edge) for edge in graph.upstream(target) if edge.source == source
        )
    return f"{'; '.join(steps)}; remove one of these dependencies"


_SCALARS = (str, bool, int, float, type(None))


def _plain(value: Any, path: Path, problems: Problems, limits: InputLimits) -> Any:
    """A copy of ``value`` made of dict, list and JSON scalars; problems for anything else."""
    if isinstance(value, _SCALARS):
        if isinstance(value, str) and (size := limits.scalar_too_large(value)) is not None:
            problems.add(
                path,
                f"this value is {describe_bytes(size)}, larger than the limit for one value "
                f"({describe_bytes(limits.max_scalar_bytes)})",
                "move the data into a file the task reads, or raise the limit "
                "(limits=InputLimits(max_scalar_bytes=...))",
            )
            return ""
        return value
    if len(path) >= MAX_DEPTH:
        problems.add(path, f"the playbook is nested more than {MAX_DEPTH} levels deep")
        return None
    if isinstance(value, Mapping):
        result: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                problems.add(
                    (*path, str(key)),
                    f"mapping keys must be strings, got {describe_kind(key)} ({key!r})",
                )
                continue
            result[key] = _plain(item, (*path, key), problems, limits)
        return result
    if isinstance(value, list | tuple):
        return [_plain(item, (*path, i), problems, limits) for i, item in enumerate(value)]
    problems.add(
        path,
        f"{format_path(path)} holds a {type(value).__name__}, which a playbook cannot contain",
        "use only mappings, lists, strings, numbers, booleans and None",
    )
    return None


def _with_defaults(data: dict[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """``data`` with the engine's defaults (``gxo.run(task_defaults=..., channel_policy=...)``)
    under its own top-level blocks of those names: the playbook's keys win, key by key."""
    merged = dict(data)
    for key, value in defaults.items():
        own = data.get(key)
        if isinstance(own, dict) and isinstance(value, Mapping):
            merged[key] = {**value, **own}
        elif own is None:
            merged[key] = value
    return merged
