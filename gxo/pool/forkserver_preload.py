"""Imported by multiprocessing's forkserver when it starts (its preload list), and nowhere else.

A batch system's SIGTERM (SLURM at the time limit, ``kill -TERM -PGID``, systemd) reaches
every process of the job, the forkserver included. A forkserver that dies on it makes every
worker look dead to the parent (multiprocessing reports exit status 255 when it cannot read
a status from the forkserver) while gxo is still stopping the running instances cleanly, so
instances that should be ``Cancelled`` fail with ``worker_exited(255)``. The forkserver
ignores SIGTERM; it still exits as soon as gxo does (its "alive" pipe reaches EOF), and SIGINT
it already ignores. SIGHUP too: a closed terminal sends it to gxo's whole process group, and
gxo handles it like SIGTERM. SIGUSR1 and SIGUSR2 too: they ask gxo to drain, and one sent to
gxo's process group (``kill -USR1 -PGID``, a batch system's warning signal sent to the whole
job) killed the forkserver, whose workers die with it (their parent-death signal), so the
instances the drain should have let finish failed and gxo ended with an internal error. They
are ignored first, before the imports, so that the forkserver's start-up is covered too.
Workers forked from it install their own handlers.

When gxo closes its "alive" pipe the forkserver leaves its loop by ``SystemExit``, and a normal
interpreter shutdown would then tear down every module the preload imported: tens of
milliseconds that the ``gxo`` command spends waiting to reap it (it never exits before its
helpers). It has nothing to clean up (no files, no children of its own to wait for: every
worker was reaped by the pool), so its first exit handler ends the process at once, after
flushing what it may have printed. Workers forked from it exit through ``os._exit`` anyway;
the handler checks the pid all the same.

Besides the worker itself, it preloads the ``python`` module most tasks use (a pooled worker
would import it once, a fresh ``isolation: process`` attempt per attempt), and msgspec's type
information for its parameters (built at the first conversion, from every annotation: about
0.35 ms, which each fresh process would pay again). The ``exec`` module
(:mod:`gxo.pool.preload_exec`) and the limits of ``isolation: process`` attempts
(:mod:`gxo.pool.enforce`) are further entries of the preload list, left out when the
playbook's text cannot use them (:func:`gxo.pool.helpers.prestart`): the forkserver's start-up
races with the parent's own on a small machine.

What it leaves out, because the forkserver's start-up races with the parent's own on a small
machine (a one-task run waits for both): psutil (the parent watches trees; a worker needs it
only to stop a module's children, ``gxo.pool.worker._on_stop``) and Jinja2, which is the
second module of the preload list (``gxo.pool.helpers.TEMPLATES_PRELOAD``) only when the
playbook's text may hold a template (:func:`gxo.pool.helpers.prestart`).

The cyclic garbage collector is off while it imports (those objects live as long as the
process and are never garbage: about 25 collections, some 4 ms of its start-up), and what it
imported is then frozen (``gc.freeze``) before the collector is turned back on: the workers
forked from it never traverse those objects again (nor copy the pages their headers are in).
"""
# ruff: noqa: E402 - the collector is turned off before the imports, so they come after it

import signal

for _signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2):
    signal.signal(_signum, signal.SIG_IGN)

import gc

gc.disable()

import atexit
import contextlib
import os
import sys

if "multiprocessing.forkserver" in sys.modules:  # multiprocessing's own forkserver (spawned)
    import multiprocessing.popen_forkserver  # noqa: F401 - what each forked child unpickles with

import msgspec

import gxo.modules.builtin.python
import gxo.pool.entry  # the workers' process target
import gxo.pool.isolation
import gxo.pool.worker

gxo.pool.worker.warm_up()
gxo.pool.isolation.library_dirs()  # cached: what each worker's ProcessState reads first
with contextlib.suppress(msgspec.ValidationError):  # required fields: built all the same
    msgspec.convert({}, gxo.modules.builtin.python.PythonModule.Params)

gc.freeze()
gc.enable()

_FORKSERVER_PID = os.getpid()


def _exit_at_once() -> None:
    if os.getpid() != _FORKSERVER_PID:
        return
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(0)


atexit.register(_exit_at_once)
