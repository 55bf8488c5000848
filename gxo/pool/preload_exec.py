"""Preloaded by the forkserver when the playbook may run ``exec`` tasks (its text says
``exec``: :func:`gxo._util.sniff.may_use_exec`): the ``exec`` module, and msgspec's type
information for its parameters (built at the first conversion: ~0.35 ms that each fresh
``isolation: process`` attempt would pay again). Imported nowhere else: a worker without it
imports the module on its first ``exec`` task."""

import contextlib

import msgspec

import gxo.modules.builtin.exec

with contextlib.suppress(msgspec.ValidationError):  # required fields: built all the same
    msgspec.convert({}, gxo.modules.builtin.exec.ExecModule.Params)
