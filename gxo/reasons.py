"""The one vocabulary of reasons: why a task or an attempt ended the way it did.

Every terminal status but ``Completed`` carries a reason (``when_false``, ``timed_out``,
``worker_signaled(SIGSEGV)``, …). A reason is a base name, optionally followed by one argument
in parentheses (``nonzero_exit(2)``, ``limit_exceeded(memory)``). This module is the only place
a base name is defined: the retry policy asks it whether a reason is worth another attempt, the
CLI and the reports show its hint, and the README's table is generated from it (a test fails
when a reason is produced anywhere without an entry here).

A module may say more than its reason: raising :class:`gxo.modules.ModuleError` with
``retry=False`` marks that one failure as not worth retrying, whatever the reason's default.

Level 0: imports nothing from gxo.
"""

from __future__ import annotations

from typing import Literal

import msgspec

__all__ = [
    "REASONS",
    "Reason",
    "base_name",
    "describe",
    "format_reason",
    "hint",
    "is_retriable",
]

#: Which terminal status a reason normally goes with.
Outcome = Literal["Failed", "Skipped", "Cancelled", "Completed"]


class Reason(msgspec.Struct, frozen=True):
    """One entry of the vocabulary."""

    #: The base name, e.g. ``worker_signaled``; the argument (``SIGSEGV``) is not part of it.
    name: str
    #: The status it goes with.
    outcome: Outcome
    #: What happened, in a sentence a person reads.
    what: str
    #: What to do next.
    todo: str
    #: Whether another attempt may succeed (only meaningful for failures). Failures that the
    #: same inputs would reproduce (a bad template, a missing secret) are not retried.
    retriable: bool = True
    #: The argument's meaning when the reason takes one (``SIG`` in ``worker_signaled(SIG)``).
    arg: str = ""

    @property
    def shown(self) -> str:
        """How the docs write it: ``worker_signaled(SIG)`` or ``when_false``."""
        return f"{self.name}({self.arg})" if self.arg else self.name


def _r(
    name: str,
    outcome: Outcome,
    what: str,
    todo: str,
    *,
    retriable: bool = True,
    arg: str = "",
) -> tuple[str, Reason]:
    return name, Reason(name, outcome, what, todo, retriable, arg)


#: Base name -> its entry. Grouped by the part of gxo that produces the reason; each later
#: capability adds its reasons in its own section, so the table reads like the product.
REASONS: dict[str, Reason] = dict(
    [
        # -- flow control (the scheduler) ---------------------------------------------------
        _r(
            "when_false",
            "Skipped",
            "`when` rendered false",
            "nothing; it registers nothing (as in GXO): read `_gxo.tasks.<name>.status` to "
            "branch on the skip",
        ),
        _r(
            "upstream_failed",
            "Skipped",
            "a task it depends on (register, stream or `depends_on` edge) failed, or was "
            "itself skipped for this reason; a stream consumer whose producer failed while "
            "streaming is Failed with `upstream_failed(<the producer's reason>)` instead",
            "fix the upstream failure, or give the upstream task `ignore_errors: true`",
        ),
        _r(
            "upstream_skipped",
            "Skipped",
            "a member of its stream group was skipped (by its `when`) before the group "
            "started, so the group could not run; nothing failed, and its dependents run",
            "nothing, if the skip was meant; otherwise see why the member was skipped",
        ),
        _r(
            "no_input",
            "Skipped",
            "`task_policy.skip_on_no_input` is set and its stream inputs carried no record",
            "nothing; it registers nothing (as in GXO): read `_gxo.tasks.<name>.status` to "
            "branch on the skip",
        ),
        _r(
            "interrupted",
            "Cancelled",
            "gxo received SIGINT, SIGTERM or SIGHUP: tasks not yet started are cancelled, "
            "running ones are stopped",
            "run again",
            retriable=False,
        ),
        _r(
            "run_timed_out",
            "Cancelled",
            "the playbook-level `timeout` expired",
            "raise `timeout`, or make the slow tasks faster",
            retriable=False,
        ),
        _r(
            "cancelled",
            "Cancelled",
            "an upstream task was cancelled",
            "run again",
            retriable=False,
        ),
        _r(
            "template_error",
            "Failed",
            "`when`, `loop` or `params` failed to render (missing field, wrong type, a `loop` "
            "that is not a list)",
            "fix the template; the error names the field, such as `$.tasks[2].params.args[0]`",
            retriable=False,
        ),
        _r(
            "timed_out",
            "Failed",
            "the task (all its loop items and retries, from its first attempt's start) ran "
            "longer than its `timeout`; what ran was stopped (TERM, grace, KILL), what had not "
            "run did not",
            "raise `timeout`, or find out why it hangs",
            retriable=False,
        ),
        _r(
            "dry_run_unrendered",
            "Completed",
            "dry run: the params read stand-in upstream results and could not be rendered",
            "nothing; a real run renders them",
        ),
        _r(
            "dry_run_unresolved",
            "Skipped",
            "dry run: `when` or `loop` read stand-in upstream results and were not evaluated",
            "nothing; a real run evaluates them",
        ),
        # -- secrets ----------------------------------------------------------------------
        _r(
            "secret_missing",
            "Failed",
            "`secret('NAME')` had no value",
            "export `NAME` in the environment gxo runs in (or add the file to --secrets-dir)",
            retriable=False,
        ),
        _r(
            "redaction_failed",
            "Failed",
            "masking secrets in the result failed, so the result was withheld",
            "report it as a gxo bug",
            retriable=False,
        ),
        # -- modules ----------------------------------------------------------------------
        _r(
            "bad_params",
            "Failed",
            "the rendered params do not fit the module (unknown or missing parameter, wrong type)",
            "fix `params`; see `gxo modules`",
            retriable=False,
        ),
        _r(
            "module_unavailable",
            "Failed",
            "the module type could not be loaded in the worker (for example, a third-party "
            "module whose import fails)",
            "reinstall or fix the module package",
            retriable=False,
        ),
        _r(
            "module_failed",
            "Failed",
            "a module raised `ModuleError` without a more precise reason",
            "read the error",
        ),
        _r(
            "module_raised",
            "Failed",
            "the module raised exception `X` (anything, including `SystemExit`)",
            "read the error and the traceback in `--report`",
            arg="X",
        ),
        _r(
            "bad_summary",
            "Failed",
            "the module returned data that cannot be sent to the parent: not JSON-compatible, "
            "nested too deeply, or an integer past 64 bits (the error names the cause)",
            "return plain data (dicts, lists, strings, numbers)",
            retriable=False,
        ),
        _r(
            "bad_record",
            "Failed",
            "a record the task wrote to its stream could not be encoded; the error names the "
            "record's index and type (the records before it were delivered)",
            "write plain data (dicts, lists, strings, numbers)",
            retriable=False,
        ),
        _r(
            "nonzero_exit",
            "Failed",
            "`exec`: the command exited with status `N`, which is not in `success_codes`",
            "read the command's output under the FAILED line; add `N` to `success_codes` if "
            "it means success",
            arg="N",
        ),
        _r(
            "command_signaled",
            "Failed",
            "`exec`: the command was killed by signal `SIG`",
            "find out what killed it (OOM killer, `kill`)",
            arg="SIG",
        ),
        _r(
            "command_not_found",
            "Failed",
            "`exec`: the program was not found on PATH, or is not executable",
            "install it or fix the path; to run a command line, give `command` as a list or "
            "set `shell: true`",
            retriable=False,
        ),
        _r(
            "working_dir_not_found",
            "Failed",
            "`exec`: `working_dir`/`cwd` does not exist",
            "create it, or fix the path (relative paths start from gxo's working directory)",
            retriable=False,
        ),
        _r(
            "command_start_failed",
            "Failed",
            "`exec`: the command could not be started for another OS reason",
            "read the error",
        ),
        _r(
            "file_not_found",
            "Failed",
            "`file:read`: the file named in `path` does not exist",
            "fix the path (relative paths start from the playbook's directory), or create the "
            "file in an earlier task",
        ),
        _r(
            "import_failed",
            "Failed",
            "`python`: the module or file named in `function` could not be imported",
            "fix the path or the import error shown",
            retriable=False,
        ),
        _r(
            "function_not_found",
            "Failed",
            "`python`: the module has no such attribute, or it is not callable",
            "fix the name (the error suggests close matches)",
            retriable=False,
        ),
        # -- worker processes -------------------------------------------------------------
        _r(
            "worker_signaled",
            "Failed",
            "the worker process running the instance died of signal `SIG` (`SIGSEGV` from a "
            "crash in C code, `SIGKILL` often from the OOM killer)",
            "fix the module; the error shows its last output",
            arg="SIG",
        ),
        _r(
            "worker_exited",
            "Failed",
            "the worker process exited with status `N` while running the instance "
            "(`os._exit(N)`, a C library calling `exit`)",
            "fix the module; the error shows its last output",
            arg="N",
        ),
        _r(
            "worker_lost",
            "Failed",
            "more than 3 workers died before they could even start this instance: something "
            "outside the instance keeps killing workers",
            "check the system (memory limits, other processes sending signals)",
        ),
        # -- streams ----------------------------------------------------------------------
        _r(
            "stream_truncated",
            "Failed",
            "a producer failed or died mid-stream, so this consumer's input is incomplete",
            "fix the producer; the consumer never reports success on partial input",
        ),
        _r(
            "stream_overflow",
            "Failed",
            "`channel_policy.overflow_strategy: error` and the consumer fell behind",
            "raise `buffer_size`, or choose `block`, `drop_new` or `drop_oldest`",
        ),
        _r(
            "stream_error",
            "Failed",
            "a stream between two tasks broke (a frame could not be read)",
            "read the error; report it as a gxo bug if the producer did not fail",
        ),
        _r(
            "consumers_gone",
            "Failed",
            "every consumer of this producer's stream closed its end (the worker's report; in "
            "a run the scheduler turns it into `consumer_closed` or `consumer_failed` once the "
            "consumers have ended)",
            "nothing: see `consumer_closed` and `consumer_failed`",
        ),
        _r(
            "invalid_stream_task",
            "Failed",
            "a task in a stream group was given a `loop`",
            "remove the loop: streams cannot be replayed",
            retriable=False,
        ),
        # -- hardening (issue 11) ---------------------------------------------------------
        _r(
            "consumer_closed",
            "Completed",
            "the stream's consumers completed after closing their inputs early "
            "(`ctx.close_inputs()`), or failed with `ignore_errors: true`; the records emitted "
            "after they closed are counted as undelivered",
            "nothing; read the producer's `undelivered` stream counter",
        ),
        _r(
            "consumer_failed",
            "Cancelled",
            "the producer was stopped because its stream consumer failed (the failure is "
            "shown once, on the consumer; a failure the consumer's `ignore_errors` absorbs "
            "gives `consumer_closed` instead)",
            "fix the consumer's failure",
            retriable=False,
        ),
        _r(
            "result_too_large",
            "Failed",
            "the task's result (its summary, encoded) is larger than `--result-limit` "
            "(default 64 MiB); it was dropped so it cannot grow gxo",
            "return less (write big data to a file and return its path), or raise `--result-limit`",
            retriable=False,
        ),
        _r(
            "record_too_large",
            "Failed",
            "a record the task wrote to its stream is larger than `--record-limit` (default "
            "16 MiB, encoded); the consumers see the producer fail",
            "send smaller records (a path to a file instead of its contents), or raise "
            "`--record-limit`",
            retriable=False,
        ),
        _r(
            "worker_protocol_error",
            "Failed",
            "the worker running the instance sent something that is not a valid message (a "
            "frame over the 1 GiB limit); it was killed and replaced",
            "report it as a gxo bug",
            retriable=False,
        ),
        # -- visibility (issue 12) --------------------------------------------------------
        # -- limits and isolation (issue 13) ----------------------------------------------
        _r(
            "limit_exceeded",
            "Failed",
            "the task went past its `limits` entry `WHICH` and was stopped: `memory` (the "
            "tree's resident memory, or an OOM kill in its cgroup), `cpu` (CPU seconds, "
            "SIGXCPU), `processes` (the tree's process count, or a refused fork), `open_files` "
            "(EMFILE), `file_size` (EFBIG or SIGXFSZ), `output` (its command wrote more than "
            "`limits.output` bytes to stdout and stderr together); the report's attempt "
            "`usage` holds the limit and the peak measured. Retried as `retry` says, like any "
            "failure",
            "raise the limit (the `usage` peaks of a successful run show what the task needs), "
            "or make the task use less",
            arg="WHICH",
        ),
        # -- GXO compatibility (issue 14) -------------------------------------------------
        _r(
            "attempt_timed_out",
            "Failed",
            "one attempt ran longer than the task's `attempt_timeout` (gxo extension); it was "
            "stopped (TERM, grace, KILL) and is retried if `retry` allows",
            "raise `attempt_timeout`, or find out why it hangs",
        ),
        # -- library surface (issue 15) ---------------------------------------------------
        _r(
            "secret_provider_failed",
            "Failed",
            "the secrets provider raised while looking up `secret('NAME')`, or could not be "
            "built in the worker (its error is shown, redacted)",
            "check the provider's options and its access to its backend "
            "(--secrets-provider, --secrets-option, gxo.run(secrets=...))",
            retriable=False,
        ),
        # -- partial runs, resume, batch systems (issue 16) -------------------------------
        _r(
            "not_selected",
            "Skipped",
            "the command line left the task out (`gxo execute PLAYBOOK TASK...`, `--tags`, "
            "`--skip`, `--skip-tags`); a status read of it sees `Skipped`",
            "name it (or a task that needs it) on the command line to run it",
        ),
        _r(
            "upstream_not_selected",
            "Skipped",
            "it reads the register of, or streams from, a task the command line left out, "
            "and `--resume` could not restore that register from the journal; or it is in a "
            "stream group with a task left out (a stream group runs whole)",
            "select the upstream task (or the whole stream group) too, or run it once so the "
            "journal has its result",
        ),
        _r(
            "fail_fast",
            "Cancelled",
            "`--fail-fast`: another task failed first, so this one was not started (or, with "
            "`--fail-fast-kill`, was stopped)",
            "fix the first failure, then run again with `--resume`",
            retriable=False,
        ),
        _r(
            "resumed",
            "Completed",
            "`--resume`: the journal holds a completed run of this instance with the same "
            "fingerprint; its registered value was restored and it did not run (shown as "
            "`cached`)",
            "nothing; `--force TASK` runs it again",
        ),
        _r(
            "deadline",
            "Cancelled",
            "`--deadline` (or `GXO_DEADLINE`): the instance would not have finished before the "
            "deadline, so it was not started; gxo exits 75",
            "submit the job again with `--resume` (the job script can requeue itself)",
            retriable=False,
        ),
        _r(
            "drained",
            "Cancelled",
            "gxo received SIGUSR1 or SIGUSR2 (a batch system's warning before the walltime): "
            "it started nothing new and let running instances finish; gxo exits 75",
            "run again with `--resume`",
            retriable=False,
        ),
        # -- distributed executors (issue 17) ---------------------------------------------
        _r(
            "executor_worker_lost",
            "Failed",
            "the Dask worker at `ADDR` running the attempt died (its node was lost, or it was "
            "killed); the attempt counts as one and `retry` may run it on another worker",
            "give the task a `retry`, and find out why the worker died (its logs, the node)",
            arg="ADDR",
        ),
        _r(
            "executor_error",
            "Failed",
            "the Dask cluster could not run the attempt (the error says why)",
            "read the error; check the cluster's workers and their logs",
        ),
    ]
)


def base_name(reason: str) -> str:
    """``worker_signaled(SIGSEGV)`` -> ``worker_signaled``."""
    cut = reason.find("(")
    return reason if cut < 0 else reason[:cut]


def format_reason(name: str, arg: object = None) -> str:
    """``format_reason("nonzero_exit", 2)`` -> ``nonzero_exit(2)``; checks the name exists."""
    if name not in REASONS:
        raise KeyError(f"unknown reason {name!r}: add it to gxo.reasons.REASONS")
    return name if arg is None else f"{name}({arg})"


def describe(reason: str) -> Reason | None:
    """The entry for a reason (with or without its argument), or None if it is unknown."""
    return REASONS.get(base_name(reason))


def is_retriable(reason: str) -> bool:
    """Whether a failure with this reason may succeed on another attempt.

    Unknown reasons (a third-party module's own) are retriable: the module decides otherwise
    by raising ``ModuleError(..., retry=False)``.
    """
    entry = describe(reason)
    return True if entry is None else entry.retriable


def hint(reason: str) -> str:
    """What to do next, for a person reading a failure; empty for unknown reasons."""
    entry = describe(reason)
    return "" if entry is None else entry.todo
