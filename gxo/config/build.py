"""Schema-checked data → the msgspec model, with defaults applied and policies merged.

Values the schema rejected are passed in as ``bad`` paths and treated as absent, so the
model can still be built (and the logical checks can still run) when some of the playbook
is wrong; the load raises afterwards anyway. Durations become seconds, ``0`` timeouts become
``None``, and each task's ``policy``/``channel_policy``/``state_policy`` is merged key by key
over the playbook's ``task_policy``/``channel_policy``/``state_policy``. Unnamed tasks get the
id ``__task_idx_<i>``. ``vars`` are not templated (GXO semantics); ``overrides`` replace or add
top-level vars.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, Final, NamedTuple, TypeVar

import msgspec

from gxo.config.duration import MAX_DURATION, format_duration, parse_duration
from gxo.config.join_keys import per_record_join_keys
from gxo.config.model import (
    ChannelPolicy,
    Isolation,
    Limits,
    LimitsMode,
    LoopControl,
    Playbook,
    RetryPolicy,
    StatePolicy,
    Task,
    TaskPolicy,
)
from gxo.config.problems import Path, Problems, describe_value
from gxo.config.size import parse_size

__all__ = ["UNNAMED_PREFIX", "build_playbook"]

#: Prefix of the id given to a task without a name (``__task_idx_3``).
UNNAMED_PREFIX: Final = "__task_idx_"

_DEFAULT_RETRY: Final = RetryPolicy()
_DEFAULT_LOOP_CONTROL: Final = LoopControl()
_NO_LIMITS: Final = Limits()

_P = TypeVar("_P", TaskPolicy, ChannelPolicy, StatePolicy)


class _Isolation(NamedTuple):
    isolation: Isolation
    network: bool
    limits_mode: LimitsMode


_POOLED: Final = _Isolation("pooled", True, "strict")


class _Defaults(NamedTuple):
    timeout: float | None
    attempt_timeout: float | None
    retry: RetryPolicy


def _streams_not_retried_by_default(tasks: tuple[Task, ...], raw_tasks: Any) -> tuple[Task, ...]:
    """The tasks, a streaming one without a ``retry`` of its own not given the default one.

    A stream cannot be replayed, so a streaming task is never retried: its own ``retry``
    with ``attempts`` above 1 is an error (``gxo.config.checks``), but the playbook-wide
    ``task_defaults.retry`` (or ``gxo.run(task_defaults=...)``) only applies to the tasks
    that can be retried, instead of making every playbook with a stream invalid.
    """
    streaming = {name for task in tasks for name in task.stream_inputs}
    return tuple(
        msgspec.structs.replace(task, retry=_DEFAULT_RETRY)
        if task.retry.attempts > 1
        and (task.stream_inputs or (task.named and task.name in streaming))
        and "retry" not in raw_tasks[task.index]
        else task
        for task in tasks
    )


class _Builder:
    def __init__(self, bad: set[Path], problems: Problems) -> None:
        self.bad = bad
        self.problems = problems

    def get(self, raw: Mapping[str, Any], key: str, path: Path) -> Any:
        """``raw[key]``, or None when absent or rejected by the schema."""
        value = raw.get(key)
        if value is None or (self.bad and (*path, key) in self.bad):
            return None
        return value

    def seconds(self, raw: Mapping[str, Any], key: str, path: Path) -> float | None:
        value = self.get(raw, key, path)
        if value is None:
            return None
        try:
            seconds = parse_duration(value)
        except ValueError as error:
            self.problems.add((*path, key), f"'{key}': {error}")
            return None
        if seconds > MAX_DURATION:
            self.problems.add(
                (*path, key),
                f"'{key}' is {describe_value(value)}, longer than the maximum duration "
                f"({format_duration(MAX_DURATION)}, 30 days)",
                "a plain number is read as seconds; write a duration such as 90s, 2h or "
                "168h, or leave the key out for no limit",
            )
            return None
        return seconds

    def finite(self, raw: Mapping[str, Any], key: str, path: Path) -> float | None:
        value = self.get(raw, key, path)
        if value is None:
            return None
        if not math.isfinite(value):
            self.problems.add((*path, key), f"'{key}' must be a finite number, got {value!r}")
            return None
        return float(value)

    def size(self, raw: Mapping[str, Any], key: str, path: Path) -> int | None:
        value = self.get(raw, key, path)
        if value is None:
            return None
        try:
            return parse_size(value)
        except ValueError as error:
            self.problems.add((*path, key), f"'{key}': {error}")
            return None

    def limits(self, raw: Any, path: Path, base: Limits) -> Limits:
        """``limits`` merged key by key over ``base`` (the playbook's)."""
        if not isinstance(raw, dict) or (self.bad and path in self.bad):
            return base
        fields: dict[str, Any] = {}
        for key in ("output", "memory", "file_size"):
            size = self.size(raw, key, path)
            if size is not None:
                fields[key] = size
        cpu = self.seconds(raw, "cpu", path)
        if cpu is not None:
            fields["cpu"] = cpu
        for key in ("open_files", "processes"):
            count = self.get(raw, key, path)
            if count is not None:
                fields[key] = count
        return msgspec.structs.replace(base, **fields) if fields else base

    def isolation(self, raw: Mapping[str, Any], path: Path, base: _Isolation) -> _Isolation:
        """``isolation``, ``network`` and ``limits_mode``, each the task's own or ``base``."""
        isolation = self.get(raw, "isolation", path)
        network = self.get(raw, "network", path)
        mode = self.get(raw, "limits_mode", path)
        return _Isolation(
            isolation if isolation is not None else base.isolation,
            network if network is not None else base.network,
            mode if mode is not None else base.limits_mode,
        )

    def policy(self, cls: type[_P], raw: Any, path: Path, base: _P) -> _P:
        if not isinstance(raw, dict) or not raw or (self.bad and path in self.bad):
            return base
        fields = {
            key: value
            for key, value in raw.items()
            if key in cls.__struct_fields__ and not (self.bad and (*path, key) in self.bad)
        }
        return msgspec.structs.replace(base, **fields) if fields else base

    def retry(self, raw: Any, path: Path) -> RetryPolicy:
        if not isinstance(raw, dict) or (self.bad and path in self.bad):
            return _DEFAULT_RETRY
        if not raw:
            return _DEFAULT_RETRY
        fields: dict[str, Any] = {}
        attempts = self.get(raw, "attempts", path)
        if attempts is not None:
            fields["attempts"] = attempts
        delay = self.seconds(raw, "delay", path)
        if delay is not None:
            fields["delay"] = delay
        max_delay = self.seconds(raw, "max_delay", path)
        if max_delay is not None:
            fields["max_delay"] = max_delay
        for key in ("backoff_factor", "jitter"):
            number = self.finite(raw, key, path)
            if number is not None:
                fields[key] = number
        on_error = self.get(raw, "on_error", path)
        if on_error is not None:
            fields["on_error"] = on_error
        if delay is not None and max_delay is not None and 0 < max_delay < delay:
            self.problems.add(
                (*path, "max_delay"),
                f"'max_delay' ({raw['max_delay']}) must not be less than 'delay' ({raw['delay']})",
                "raise max_delay, lower delay, or set max_delay: 0s for no cap",
            )
        return RetryPolicy(**fields)

    def defaults(self, raw: Any) -> _Defaults:
        """``task_defaults`` (gxo extension): what a task that sets none of these gets."""
        path: Path = ("task_defaults",)
        if not isinstance(raw, dict) or (self.bad and path in self.bad):
            return _Defaults(None, None, _DEFAULT_RETRY)
        return _Defaults(
            self.seconds(raw, "timeout", path),
            self.seconds(raw, "attempt_timeout", path),
            self.retry(raw.get("retry"), (*path, "retry")),
        )

    def timing(
        self, raw: Mapping[str, Any], path: Path, defaults: _Defaults
    ) -> tuple[float | None, float | None, RetryPolicy]:
        """A task's ``timeout``, ``attempt_timeout`` and ``retry``, each its own or the
        default (a task's ``retry`` block replaces the default block whole)."""
        timeout = self.seconds(raw, "timeout", path) if "timeout" in raw else defaults.timeout
        attempt_timeout = (
            self.seconds(raw, "attempt_timeout", path)
            if "attempt_timeout" in raw
            else defaults.attempt_timeout
        )
        retry = self.retry(raw.get("retry"), (*path, "retry")) if "retry" in raw else defaults.retry
        return timeout, attempt_timeout, retry

    def loop_control(self, raw: Any, path: Path) -> LoopControl:
        if not isinstance(raw, dict) or not raw or (self.bad and path in self.bad):
            return _DEFAULT_LOOP_CONTROL
        fields = {
            key: value
            for key in ("parallel", "loop_var")
            if (value := self.get(raw, key, path)) is not None
        }
        return LoopControl(**fields) if fields else _DEFAULT_LOOP_CONTROL

    def names(self, raw: Mapping[str, Any], key: str, path: Path) -> tuple[str, ...]:
        value = self.get(raw, key, path)
        if not value:
            return ()
        # A name listed twice means the same dependency; keep the first.
        return tuple(dict.fromkeys(value))

    def task(
        self,
        index: int,
        raw: Mapping[str, Any],
        playbook_policies: tuple[TaskPolicy, ChannelPolicy, StatePolicy],
        defaults: _Defaults,
        limits: Limits = _NO_LIMITS,
        isolation: _Isolation = _POOLED,
    ) -> Task:
        path: Path = ("tasks", index)
        # Each block a task does not set is the playbook's (or the default) as it is: its
        # path is not spelt and its method not called (most tasks set few keys).
        task_limits = (
            self.limits(raw["limits"], (*path, "limits"), limits) if "limits" in raw else limits
        )
        mode = (
            self.isolation(raw, path, isolation)
            if "isolation" in raw or "network" in raw or "limits_mode" in raw
            else isolation
        )
        # Limits that need a fresh process, and a network namespace, imply isolation: process.
        process = (
            mode.isolation == "process"
            or not mode.network
            or (task_limits is not _NO_LIMITS and bool(task_limits.process_limits()))
        )
        # Without rejected paths, get() is the mapping's own get (None when absent).
        get: Callable[[str], Any] = (
            raw.get if not self.bad else lambda key: self.get(raw, key, path)
        )
        name = get("name")
        if "timeout" in raw or "attempt_timeout" in raw or "retry" in raw:
            timeout, attempt_timeout, retry = self.timing(raw, path, defaults)
        else:
            timeout, attempt_timeout, retry = defaults
        task_policy, channel_policy, state_policy = playbook_policies
        loop = get("loop")
        when = get("when")
        return Task(
            index=index,
            name=name if name is not None else f"{UNNAMED_PREFIX}{index}",
            named=name is not None,
            type=get("type") or "",
            params=get("params") or {},
            register=get("register"),
            stream_inputs=self.names(raw, "stream_inputs", path) if "stream_inputs" in raw else (),
            depends_on=self.names(raw, "depends_on", path) if "depends_on" in raw else (),
            when=when,
            loop=loop,
            loop_control=(
                self.loop_control(raw["loop_control"], (*path, "loop_control"))
                if "loop_control" in raw
                else _DEFAULT_LOOP_CONTROL
            ),
            retry=retry,
            timeout=timeout or None,
            attempt_timeout=attempt_timeout or None,
            ignore_errors=bool(get("ignore_errors")),
            policy=(
                self.policy(TaskPolicy, raw["policy"], (*path, "policy"), task_policy)
                if "policy" in raw
                else task_policy
            ),
            channel_policy=(
                self.policy(
                    ChannelPolicy, raw["channel_policy"], (*path, "channel_policy"), channel_policy
                )
                if "channel_policy" in raw
                else channel_policy
            ),
            state_policy=(
                self.policy(StatePolicy, raw["state_policy"], (*path, "state_policy"), state_policy)
                if "state_policy" in raw
                else state_policy
            ),
            tags=self.names(raw, "tags", path) if "tags" in raw else (),
            inputs=self.names(raw, "inputs", path) if "inputs" in raw else (),
            outputs=self.names(raw, "outputs", path) if "outputs" in raw else (),
            resources=self.resources(raw, path) if "resources" in raw else {},
            limits=task_limits,
            isolation="process" if process else "pooled",
            network=mode.network,
            limits_mode=mode.limits_mode,
            output=get("output") or "capture",
        )

    def resources(self, raw: Mapping[str, Any], path: Path) -> dict[str, float]:
        """``resources``; ``cpus`` must be a whole number (slots cannot be shared)."""
        value = self.get(raw, "resources", path)
        if not value:
            return {}
        cpus = value.get("cpus")
        if cpus is not None and cpus != int(cpus):
            self.problems.add(
                (*path, "resources", "cpus"),
                f"'cpus' must be a whole number of worker slots, got {cpus!r}",
                "round it up: an instance takes whole worker slots",
            )
            return {k: v for k, v in value.items() if k != "cpus"}
        return dict(value)


def build_playbook(
    data: Mapping[str, Any],
    *,
    source: str,
    schema_version: str,
    overrides: Mapping[str, Any] | None,
    bad: set[Path],
    problems: Problems,
) -> Playbook:
    """The model of ``data`` (a mapping that passed the schema, except at ``bad`` paths).

    Problems the schema cannot see (a duration too long, a non-finite number, ``max_delay``
    below ``delay``) go to ``problems``.
    """
    builder = _Builder(bad, problems)
    policies = (
        builder.policy(TaskPolicy, data.get("task_policy"), ("task_policy",), TaskPolicy()),
        builder.policy(
            ChannelPolicy, data.get("channel_policy"), ("channel_policy",), ChannelPolicy()
        ),
        builder.policy(StatePolicy, data.get("state_policy"), ("state_policy",), StatePolicy()),
    )
    defaults = builder.defaults(data.get("task_defaults"))
    limits = builder.limits(data.get("limits"), ("limits",), _NO_LIMITS)
    isolation = builder.isolation(data, (), _POOLED)
    raw_tasks = builder.get(data, "tasks", ())
    tasks = tuple(
        builder.task(index, raw, policies, defaults, limits, isolation)
        for index, raw in enumerate(raw_tasks or ())
        if isinstance(raw, dict) and not (bad and ("tasks", index) in bad)
    )
    raw_vars = builder.get(data, "vars", ())
    variables: dict[str, Any] = dict(raw_vars) if isinstance(raw_vars, dict) else {}
    if overrides:
        variables.update(overrides)
    tasks = per_record_join_keys(tasks, variables, problems)
    if defaults.retry is not _DEFAULT_RETRY:
        tasks = _streams_not_retried_by_default(tasks, raw_tasks)
    name = builder.get(data, "name", ())
    return Playbook(
        name=name if isinstance(name, str) else "",
        schema_version=schema_version,
        tasks=tasks,
        vars=variables,
        task_policy=policies[0],
        channel_policy=policies[1],
        state_policy=policies[2],
        timeout=builder.seconds(data, "timeout", ()) or None,
        output_capture=builder.size(data, "output_capture", ()),
        limits=limits,
        isolation=isolation.isolation,
        network=isolation.network,
        limits_mode=isolation.limits_mode,
        source=source,
    )
