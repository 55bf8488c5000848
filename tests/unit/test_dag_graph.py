"""gxo.dag.Graph: structure, order, and cycles (with Hypothesis for the invariants)."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gxo.dag import EDGE_KINDS, Edge, Graph


def chain(*names: str, kind: str = "depends_on") -> list[Edge]:
    return [Edge(a, b, kind) for a, b in itertools.pairwise(names)]  # type: ignore[arg-type]


def test_structure_accessors() -> None:
    graph = Graph(
        ["a", "b", "c", "d"],
        [Edge("a", "c", "register"), Edge("b", "c", "stream"), Edge("c", "d", "status")],
    )
    assert graph.nodes == ("a", "b", "c", "d")
    assert len(graph) == 4
    assert "c" in graph
    assert "z" not in graph
    assert graph.index("c") == 2
    assert graph.upstream("c") == (Edge("a", "c", "register"), Edge("b", "c", "stream"))
    assert graph.downstream("c") == (Edge("c", "d", "status"),)
    assert graph.upstream("a") == ()
    assert graph.roots() == ("a", "b")
    assert repr(graph) == "<Graph nodes=4 edges=3>"
    with pytest.raises(KeyError):
        graph.upstream("z")


def test_duplicate_edges_merge_per_kind() -> None:
    graph = Graph(
        ["a", "b"],
        [
            Edge("a", "b", "register"),
            Edge("a", "b", "register"),
            Edge("a", "b", "status"),
            ("a", "b", "status"),  # type: ignore[list-item]
        ],
    )
    assert graph.edges == (Edge("a", "b", "register"), Edge("a", "b", "status"))
    assert graph.topological_order() == ("a", "b")


@pytest.mark.parametrize(
    ("nodes", "edges", "message"),
    [
        (["a", "b", "a"], [], "duplicate node 'a'"),
        (["a"], [Edge("a", "a", "depends_on")], "self-edge on 'a'"),
        (["a"], [Edge("a", "z", "depends_on")], "unknown node 'z'"),
        (["a", "b"], [Edge("a", "b", "sideways")], "unknown edge kind"),  # type: ignore[arg-type]
    ],
)
def test_invalid_graphs_are_refused(nodes: list[str], edges: list[Edge], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Graph(nodes, edges)


def test_graph_is_immutable() -> None:
    graph = Graph(["a", "b"], chain("a", "b"))
    with pytest.raises(AttributeError):
        graph.nodes = ()  # type: ignore[misc]
    with pytest.raises(AttributeError):
        graph.extra = 1  # type: ignore[attr-defined]
    assert isinstance(graph.edges, tuple)


def test_topological_order_is_stable_in_playbook_order() -> None:
    # Independent tasks keep their file order; a dependency listed later still comes first.
    graph = Graph(["consumer", "x", "producer", "y"], [Edge("producer", "consumer", "register")])
    assert graph.topological_order() == ("x", "producer", "consumer", "y")
    assert Graph(["c", "b", "a"]).topological_order() == ("c", "b", "a")


def test_cycle_detection_with_path() -> None:
    graph = Graph(
        ["x", "b", "c", "a"],
        [
            Edge("a", "b", "register"),
            Edge("b", "c", "status"),
            Edge("c", "a", "stream"),
            Edge("x", "a", "depends_on"),
        ],
    )
    # Starts at the cycle's earliest task in playbook order; edges go upstream -> downstream.
    assert graph.find_cycle() == ["b", "c", "a", "b"]
    with pytest.raises(ValueError, match="cycle: b -> c -> a -> b"):
        graph.topological_order()


def test_no_cycle() -> None:
    graph = Graph(["a", "b", "c"], [*chain("a", "b", "c"), Edge("a", "c", "status")])
    assert graph.find_cycle() is None
    assert graph.find_cycles() == []


def test_one_cycle_per_strongly_connected_group() -> None:
    graph = Graph(
        ["p", "q", "r", "s", "t"],
        [
            *chain("p", "q", "r", "p"),
            Edge("q", "p", "status"),  # a shorter cycle inside the same group
            *chain("s", "t", "s"),
            Edge("r", "s", "depends_on"),
        ],
    )
    assert graph.find_cycles() == [["p", "q", "p"], ["s", "t", "s"]]


def test_long_chain_does_not_recurse() -> None:
    names = [f"t{i}" for i in range(20_000)]
    graph = Graph(names, chain(*names))
    assert graph.topological_order() == tuple(names)
    assert graph.find_cycle() is None
    looped = Graph(names, [*chain(*names), Edge(names[-1], names[0], "status")])
    cycle = looped.find_cycle()
    assert cycle is not None
    assert len(cycle) == len(names) + 1


@st.composite
def dags(draw: st.DrawFn) -> tuple[list[str], list[Edge]]:
    """A random DAG: edges go forward in a random hidden order, nodes listed in another."""
    count = draw(st.integers(min_value=1, max_value=25))
    hidden = draw(st.permutations(range(count)))
    pairs = draw(
        st.lists(
            st.tuples(st.integers(0, count - 1), st.integers(0, count - 1)),
            max_size=count * 3,
        )
    )
    kinds = draw(st.lists(st.sampled_from(EDGE_KINDS), min_size=len(pairs), max_size=len(pairs)))
    nodes = [f"n{i}" for i in range(count)]
    edges = [
        Edge(nodes[hidden[min(a, b)]], nodes[hidden[max(a, b)]], kind)
        for (a, b), kind in zip(pairs, kinds, strict=True)
        if a != b
    ]
    return nodes, edges


@given(dags())
def test_topological_order_respects_every_edge(dag: tuple[list[str], list[Edge]]) -> None:
    nodes, edges = dag
    graph = Graph(nodes, edges)
    order = graph.topological_order()
    assert sorted(order) == sorted(nodes)
    position = {name: i for i, name in enumerate(order)}
    for edge in graph.edges:
        assert position[edge.source] < position[edge.target]
    assert graph.find_cycle() is None
    # Stability: a node comes as early as its dependencies allow, by playbook order.
    roots = graph.roots()
    assert order[0] == roots[0]


@given(dags(), st.data())
def test_a_back_edge_makes_a_real_cycle(
    dag: tuple[list[str], list[Edge]], data: st.DataObject
) -> None:
    nodes, edges = dag
    graph = Graph(nodes, edges)
    order = graph.topological_order()
    if not graph.edges:
        return
    source, target, _ = data.draw(st.sampled_from(graph.edges))
    cyclic = Graph(nodes, [*edges, Edge(target, source, "status")])
    cycle = cyclic.find_cycle()
    assert cycle is not None
    assert cycle[0] == cycle[-1]
    assert len(set(cycle[:-1])) == len(cycle) - 1  # simple: no node twice
    linked = {(e.source, e.target) for e in cyclic.edges}
    for a, b in itertools.pairwise(cycle):
        assert (a, b) in linked
    assert min(cyclic.index(n) for n in cycle) == cyclic.index(cycle[0])
    with pytest.raises(ValueError, match="cycle"):
        cyclic.topological_order()
    assert order  # the acyclic graph did order
