"""combine_by_key, aggregate_by_key and fold_by_key on a DStream (kstream/pair_functions.py),
run locally and split over tasks and partitions as on Kafka."""

from __future__ import annotations

import operator

import pytest

from kstream import ConfigError
from kstream.partitioning import BY_KEY, partitioner
from tests.unit.queues import dicts, queue

BATCHES = [[("a", 1), ("b", 2), ("a", 3)], [], [("b", 4), ("c", 5), ("b", 6), ("b", 8)]]


def to_mean(v):
    return (v, 1)


def add_value(c, v):
    return (c[0] + v, c[1] + 1)


def add_means(c1, c2):
    return (c1[0] + c2[0], c1[1] + c2[1])


def node_of(app, kind):
    (node,) = [n for n in app.nodes if n.op.kind == kind]
    return node


def test_combine_by_key_and_its_spark_name():
    app, s = queue(BATCHES)
    snake = s.combine_by_key(to_mean, add_value, add_means).collect()
    camel = s.combineByKey(to_mean, add_value, add_means).collect()
    app.run_batches(3)
    expected = [(1.0, {"a": (4, 2), "b": (2, 1)}), (2.0, {}), (3.0, {"b": (18, 3), "c": (5, 1)})]
    assert dicts(snake) == expected
    assert dicts(camel) == expected


def test_combine_by_key_reads_through_a_shuffle_that_combines_each_task():
    app, s = queue(BATCHES)
    s.combine_by_key(to_mean, add_value, add_means, num_partitions=3).collect()
    combine = node_of(app, "combine_by_key")
    (shuffle,) = combine.parents
    assert shuffle.op.kind == "shuffle" and shuffle.op.target == combine.name
    assert shuffle.op.partitions == 3 and shuffle.op.by == BY_KEY
    sent = shuffle.op.apply([[("a", 1), ("a", 2), ("b", 7)]], 1000)
    assert sent == [("a", (3, 2)), ("b", (7, 1))]  # one record per key crosses


def test_combine_by_key_split_over_tasks_and_partitions_as_on_kafka():
    app, s = queue([])
    s.combine_by_key(to_mean, add_value, add_means, num_partitions=3).collect()
    combine = node_of(app, "combine_by_key")
    (shuffle,) = combine.parents
    tasks = [[("a", 1), ("b", 2), ("a", 3)], [("b", 4), ("a", 5)], [("c", 6), ("a", 7)]]
    sent = [r for task in tasks for r in shuffle.op.apply([task], 1000)]
    where = partitioner(BY_KEY, 3)
    results = [combine.op.apply([[r for r in sent if where(r) == p]], 1000) for p in range(3)]
    for p, result in enumerate(results):
        assert all(where(r) == p for r in result)  # each key in its own partition only
    got = dict(r for result in results for r in result)
    assert len(got) == sum(len(result) for result in results)
    assert got == {"a": (16, 4), "b": (6, 2), "c": (6, 1)}


def test_combine_by_key_on_a_stream_already_partitioned_by_key_needs_no_shuffle():
    app, s = queue(BATCHES)
    doubled = s.reduce_by_key(operator.add).flat_map_values(lambda v: [v, 10 * v])
    out = doubled.combine_by_key(to_mean, add_value, add_means).collect()
    app.run_batches(3)
    assert node_of(app, "combine_by_key").parents[0].op.kind != "shuffle"
    assert dicts(out) == [
        (1.0, {"a": (44, 2), "b": (22, 2)}),
        (2.0, {}),
        (3.0, {"b": (198, 2), "c": (55, 2)}),
    ]


def test_fold_by_key_and_aggregate_by_key():
    app, s = queue(BATCHES)
    folded = s.fold_by_key(100, operator.add).collect()
    aggregated = s.aggregate_by_key((), lambda acc, v: (*acc, v), operator.add).collect()
    app.run_batches(3)
    # the zero is folded in once per key and task, as in Spark: one task here
    assert dicts(folded) == [(1.0, {"a": 104, "b": 102}), (2.0, {}), (3.0, {"b": 118, "c": 105})]
    assert dicts(aggregated) == [
        (1.0, {"a": (1, 3), "b": (2,)}),
        (2.0, {}),
        (3.0, {"b": (4, 6, 8), "c": (5,)}),
    ]


def test_a_mutable_zero_is_not_shared_between_keys_or_batches():
    app, s = queue(BATCHES)

    def append(acc, v):
        acc.append(v)
        return acc

    out = s.aggregate_by_key([], append, operator.add).collect()
    app.run_batches(3)
    assert dicts(out) == [
        (1.0, {"a": [1, 3], "b": [2]}),
        (2.0, {}),
        (3.0, {"b": [4, 6, 8], "c": [5]}),
    ]


def test_names_of_the_combine_operators():
    app, s = queue(BATCHES)
    s.combine_by_key(to_mean, add_value, add_means).collect()
    s.fold_by_key(0, operator.add).collect()
    s.aggregate_by_key(0, operator.add, operator.add, name="totals").collect()
    names = {n.op.kind: n.name for n in app.nodes if n.op.kind.endswith("_by_key")}
    assert names == {
        "combine_by_key": "combine_by_key",
        "fold_by_key": "fold_by_key.add",
        "aggregate_by_key": "totals",
    }


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda s: s.combine_by_key(to_mean, 3, add_means), "combine_by_key: merge_value=3"),
        (lambda s: s.combine_by_key(None, add_value, add_means), "combine_by_key: create=None"),
        (lambda s: s.fold_by_key(0, "add"), "fold_by_key: fn='add'"),
        (lambda s: s.aggregate_by_key(0, operator.add, None), "aggregate_by_key: comb_fn=None"),
    ],
)
def test_functions_that_are_not_callable_are_refused_when_the_stream_is_built(build, message):
    _, s = queue(BATCHES)
    with pytest.raises(ConfigError, match=message):
        build(s)
