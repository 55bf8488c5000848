"""An immutable DAG of task names with typed edges, its order, and its cycles.

Nodes are task names in playbook order. An :class:`Edge` goes from the upstream task
(``source``) to the task that waits for it (``target``), and says why (``kind``):

- ``register``: the target's templates read the source's registered result;
- ``status``: the target's templates read ``_gxo.tasks.<source>``;
- ``stream``: the target lists the source in ``stream_inputs``;
- ``depends_on``: the target lists the source in ``depends_on``.

Two tasks may be joined by edges of several kinds; edges of the same kind between the same
pair are one edge. Self-edges are refused. Everything here is linear in nodes + edges (the
ordering uses a heap: ``n log n``), and nothing recurses, so a 10,000-task chain is fine.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterable
from typing import Final, Literal, NamedTuple

__all__ = ["EDGE_KINDS", "Edge", "EdgeKind", "Graph"]

EdgeKind = Literal["register", "status", "stream", "depends_on"]

#: Every edge kind, in the order edges between the same pair are listed.
EDGE_KINDS: Final[tuple[EdgeKind, ...]] = ("depends_on", "stream", "register", "status")


class Edge(NamedTuple):
    """``target`` waits for ``source``, because of ``kind``."""

    source: str
    target: str
    kind: EdgeKind


class Graph:
    """Task names and the edges between them. Immutable; every accessor returns tuples."""

    __slots__ = ("_downstream", "_edges", "_index", "_nodes", "_upstream")

    def __init__(self, nodes: Iterable[str], edges: Iterable[Edge] = ()) -> None:
        """Raises ValueError on a duplicate node, an edge to an unknown node, or a self-edge."""
        self._nodes: tuple[str, ...] = tuple(nodes)
        self._index: dict[str, int] = {name: i for i, name in enumerate(self._nodes)}
        if len(self._index) != len(self._nodes):
            for position, name in enumerate(self._nodes):
                if self._index[name] != position:
                    raise ValueError(f"duplicate node {name!r}")
        unique: dict[Edge, None] = {}
        for given in edges:
            edge = given if type(given) is Edge else Edge(*given)
            if edge.kind not in EDGE_KINDS:
                raise ValueError(f"unknown edge kind {edge.kind!r}")
            for end in (edge.source, edge.target):
                if end not in self._index:
                    raise ValueError(f"edge {edge} names unknown node {end!r}")
            if edge.source == edge.target:
                raise ValueError(f"self-edge on {edge.source!r}")
            unique[edge] = None
        self._edges: tuple[Edge, ...] = tuple(unique)
        upstream: dict[str, list[Edge]] = {}
        downstream: dict[str, list[Edge]] = {}
        for edge in self._edges:
            upstream.setdefault(edge.target, []).append(edge)
            downstream.setdefault(edge.source, []).append(edge)
        self._upstream = {name: tuple(found) for name, found in upstream.items()}
        self._downstream = {name: tuple(found) for name, found in downstream.items()}

    def __repr__(self) -> str:
        return f"<Graph nodes={len(self._nodes)} edges={len(self._edges)}>"

    def __len__(self) -> int:
        return len(self._nodes)

    def __contains__(self, name: object) -> bool:
        return name in self._index

    @property
    def nodes(self) -> tuple[str, ...]:
        """Task names, in playbook order."""
        return self._nodes

    @property
    def edges(self) -> tuple[Edge, ...]:
        """Every edge, once."""
        return self._edges

    def index(self, name: str) -> int:
        """The node's position in playbook order (raises KeyError)."""
        return self._index[name]

    def upstream(self, name: str) -> tuple[Edge, ...]:
        """Edges into ``name``: what it waits for (raises KeyError for an unknown node)."""
        self._index[name]
        return self._upstream.get(name, ())

    def downstream(self, name: str) -> tuple[Edge, ...]:
        """Edges out of ``name``: what waits for it (raises KeyError for an unknown node)."""
        self._index[name]
        return self._downstream.get(name, ())

    def roots(self) -> tuple[str, ...]:
        """Nodes that wait for nothing, in playbook order."""
        return tuple(name for name in self._nodes if name not in self._upstream)

    def topological_order(self) -> tuple[str, ...]:
        """Every node after all its upstream nodes; among nodes ready together, playbook order.

        Raises ValueError (naming a cycle) when the graph has one.
        """
        index = self._index
        waiting = {name: len({e.source for e in found}) for name, found in self._upstream.items()}
        ready = [index[name] for name in self._nodes if name not in waiting]
        heapq.heapify(ready)
        order: list[str] = []
        while ready:
            name = self._nodes[heapq.heappop(ready)]
            order.append(name)
            for target in dict.fromkeys(e.target for e in self._downstream.get(name, ())):
                waiting[target] -= 1
                if not waiting[target]:
                    heapq.heappush(ready, index[target])
        if len(order) != len(self._nodes):
            cycle = self.find_cycle() or []
            raise ValueError(f"the graph has a cycle: {' -> '.join(cycle)}")
        return tuple(order)

    def find_cycle(self) -> list[str] | None:
        """One cycle as a path whose first node is repeated at the end, or None.

        The cycle returned is the first of :meth:`find_cycles`.
        """
        cycles = self.find_cycles()
        return cycles[0] if cycles else None

    def find_cycles(self) -> list[list[str]]:
        """One cycle per strongly connected group of nodes that has one.

        Each starts (and ends) at the group's earliest node in playbook order, and is a
        shortest cycle through that node; the list is ordered by that node.
        """
        if self._acyclic():
            return []
        cycles = []
        for component in self._components():
            if len(component) > 1:
                cycles.append(self._shortest_cycle(component))
        cycles.sort(key=lambda path: self._index[path[0]])
        return cycles

    def _acyclic(self) -> bool:
        """Kahn's count: every node can be removed once its upstream nodes are."""
        waiting = {name: len(found) for name, found in self._upstream.items()}
        ready = [name for name in self._nodes if name not in waiting]
        removed = 0
        downstream = self._downstream
        while ready:
            name = ready.pop()
            removed += 1
            for edge in downstream.get(name, ()):
                left = waiting[edge.target] - 1
                waiting[edge.target] = left
                if not left:
                    ready.append(edge.target)
        return removed == len(self._nodes)

    def _successors(self, name: str) -> list[str]:
        return list(dict.fromkeys(e.target for e in self._downstream.get(name, ())))

    def _components(self) -> list[list[str]]:
        """Strongly connected components (iterative Tarjan), each in playbook order."""
        index_of: dict[str, int] = {}
        low: dict[str, int] = {}
        on_stack: set[str] = set()
        stack: list[str] = []
        components: list[list[str]] = []
        counter = 0
        for root in self._nodes:
            if root in index_of:
                continue
            work: list[tuple[str, list[str], int]] = [(root, self._successors(root), 0)]
            index_of[root] = low[root] = counter
            counter += 1
            stack.append(root)
            on_stack.add(root)
            while work:
                node, successors, position = work[-1]
                if position < len(successors):
                    work[-1] = (node, successors, position + 1)
                    child = successors[position]
                    if child not in index_of:
                        index_of[child] = low[child] = counter
                        counter += 1
                        stack.append(child)
                        on_stack.add(child)
                        work.append((child, self._successors(child), 0))
                    elif child in on_stack:
                        low[node] = min(low[node], index_of[child])
                    continue
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index_of[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    component.sort(key=self._index.__getitem__)
                    components.append(component)
        return components

    def _shortest_cycle(self, component: list[str]) -> list[str]:
        """A shortest path from the component's first node back to itself (breadth first)."""
        start = component[0]
        members = set(component)
        parent: dict[str, str] = {}
        queue = deque([start])
        while queue:
            node = queue.popleft()
            for child in self._successors(node):
                if child == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(parent[path[-1]])
                    path.reverse()
                    return [*path, start]
                if child in members and child not in parent:
                    parent[child] = node
                    queue.append(child)
        raise AssertionError("a strongly connected component always has a cycle")
