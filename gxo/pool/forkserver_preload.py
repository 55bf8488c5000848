"""Imported by multiprocessing's forkserver when it starts (its preload list), and nowhere else.

A batch system's SIGTERM (SLURM at the time limit, ``kill -TERM -PGID``, systemd) reaches
every process of the job, the forkserver included. A forkserver that dies on it makes every
worker look dead to the parent (multiprocessing reports exit status 255 when it cannot read
a status from the forkserver) while gxo is still stopping the running instances cleanly, so
instances that should be ``Cancelled`` fail with ``worker_exited(255)``. The forkserver
ignores SIGTERM; it still exits as soon as gxo does (its "alive" pipe reaches EOF), and SIGINT
it already ignores. SIGHUP too: a closed terminal sends it to gxo's whole process group, and
gxo handles it like SIGTERM. Workers forked from it install their own handlers.

Besides the worker itself, it preloads what an ``isolation: process`` attempt needs in every
fresh process (its limits, and the ``python`` and ``exec`` modules most tasks use): a pooled
worker imports them once, a fresh process would import them per attempt.
"""

import signal

import gxo.modules.builtin.exec
import gxo.modules.builtin.python
import gxo.pool.enforce
import gxo.pool.worker

gxo.pool.worker.warm_up()

signal.signal(signal.SIGTERM, signal.SIG_IGN)
signal.signal(signal.SIGHUP, signal.SIG_IGN)
