"""Stream groups: tasks connected by ``stream`` edges, which must run at the same time."""

from __future__ import annotations

from gxo.dag.graph import Graph

__all__ = ["group_blockers", "stream_groups"]


def stream_groups(graph: Graph) -> list[tuple[str, ...]]:
    """Connected components of the stream edges (two tasks or more), in playbook order."""
    parent: dict[str, str] = {}

    def find(name: str) -> str:
        root = name
        while parent.get(root, root) != root:
            root = parent[root]
        while parent.get(name, name) != root:
            parent[name], name = root, parent[name]
        return root

    for edge in graph.edges:
        if edge.kind == "stream":
            parent.setdefault(edge.source, edge.source)
            parent.setdefault(edge.target, edge.target)
            a, b = find(edge.source), find(edge.target)
            if a != b:
                parent[b] = a
    members: dict[str, list[str]] = {}
    for name in graph.nodes:
        if name in parent:
            members.setdefault(find(name), []).append(name)
    return [tuple(group) for group in members.values() if len(group) > 1]


def group_blockers(graph: Graph, group: tuple[str, ...]) -> list[tuple[str, str, str]]:
    """Non-stream edges that make a group wait for itself: (source, target, kind).

    A member that waits for the end of another member (directly, or through tasks outside the
    group) could never start with it. Returned: the first edge of each such path leaving a
    member, found by a walk from every member's non-stream downstream edges.
    """
    inside = set(group)
    found: list[tuple[str, str, str]] = []
    for start in group:
        for edge in graph.downstream(start):
            if edge.kind == "stream":
                continue
            if edge.target in inside:
                found.append((edge.source, edge.target, edge.kind))
                continue
            seen = {edge.target}
            todo = [edge.target]
            while todo:
                node = todo.pop()
                hit = False
                for nxt in graph.downstream(node):
                    if nxt.target in inside:
                        hit = True
                        break
                    if nxt.target not in seen:
                        seen.add(nxt.target)
                        todo.append(nxt.target)
                if hit:
                    found.append((edge.source, edge.target, edge.kind))
                    break
    return found
