"""Evaluating the graph (kstream/graph.py): chains of record operators run as iterators,
and an error is traced to the node that raised it."""

from __future__ import annotations

import pytest

import kstream
from kstream.graph import evaluate, failed_node


def test_evaluate_names_the_node_that_raised():
    app = kstream.App("t", batch_interval=1.0)
    app.queue_stream([[1, 0]]).map(lambda x: 1 // x).collect()
    nodes = app.ordered_nodes()
    with pytest.raises(ZeroDivisionError) as e:
        evaluate(nodes, 1000, {})
    assert failed_node(e.value) is nodes[1]


def chain_app(split, pair):
    app = kstream.App("t", batch_interval=1.0)
    app.queue_stream([["a b", "c"]]).flat_map(split).map(pair).update_state_by_key(
        lambda new, s: len(new) + (s or 0)
    ).collect()
    nodes = app.ordered_nodes()  # source, flat_map, map, shuffle, update_state_by_key, …
    return nodes[:4]  # up to the shuffle: the state op would need a store


def test_a_chain_of_record_operators_runs_as_iterators_and_is_left_out_of_the_result():
    nodes = chain_app(str.split, lambda w: (w, 1))
    values = evaluate(nodes, 1000, {})
    assert [n.op.kind for n in nodes if n not in values] == ["flat_map", "map"]
    assert sorted(values[nodes[3]]) == [("a", [1]), ("b", [1]), ("c", [1])]


@pytest.mark.parametrize("culprit", [1, 2])
def test_an_error_in_a_chain_names_the_step_that_raised(culprit):
    def split(line):
        if culprit == 1 and line == "c":
            raise ValueError("bad line")
        return line.split()

    def pair(w):
        if culprit == 2 and w == "b":
            raise ValueError("bad word")
        return (w, 1)

    nodes = chain_app(split, pair)
    with pytest.raises(ValueError) as e:
        evaluate(nodes, 1000, {})
    assert failed_node(e.value) is nodes[culprit]


def test_an_error_of_the_reader_of_a_chain_names_the_reader():
    nodes = chain_app(str.split, lambda w: ([w], 1))  # an unhashable key: the grouping raises
    with pytest.raises(TypeError) as e:
        evaluate(nodes, 1000, {})
    assert failed_node(e.value) is nodes[3]
