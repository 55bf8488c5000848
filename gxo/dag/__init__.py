"""The task dependency graph: which task waits for which, and why.

``analyse(playbook) -> Plan`` is the entry point: ``plan.graph`` is an immutable
:class:`Graph` of task names with typed edges (``register``, ``status``, ``stream``,
``depends_on``), and ``plan.templates[name]`` is the task's :class:`TaskTemplates` (compiled
``when``/``loop``/``params`` and the state names they read), which the scheduler renders.
``build_graph(playbook)`` is the shortcut for ``analyse(playbook).graph``;
:mod:`gxo.dag.groups` finds the stream groups (tasks joined by stream edges, which start
together).

Level 2: reads the model (:mod:`gxo.config.model`) and compiles templates
(:mod:`gxo.template`); ``gxo.config.load`` (level 3) calls :func:`analyse` as its last check.
"""

from gxo.dag.build import Plan, TaskTemplates, analyse, build_graph, compile_task
from gxo.dag.graph import EDGE_KINDS, Edge, EdgeKind, Graph

__all__ = [
    "EDGE_KINDS",
    "Edge",
    "EdgeKind",
    "Graph",
    "Plan",
    "TaskTemplates",
    "analyse",
    "build_graph",
    "compile_task",
]
