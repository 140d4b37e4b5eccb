"""Whole-batch and per-key aggregations: count, reduce, *_by_key, repartition."""

from __future__ import annotations

import operator
from collections import Counter

import pytest

import kstream
from tests.unit.queues import dicts, queue


def groups(collected):
    """group_by_key batches as (time, {key: sorted values}): value order is arbitrary."""
    out = []
    for t, records in collected.batches:
        keys = [k for k, _ in records]
        assert len(keys) == len(set(keys)), f"duplicate keys in batch {t}: {records}"
        for _, vs in records:
            assert isinstance(vs, list)
        out.append((t, {k: sorted(vs) for k, vs in records}))
    return out


# -- count ----------------------------------------------------------------------------
def test_count_gives_zero_for_an_empty_batch():
    app, s = queue([["a", "b", "c"], [], ["d"]])
    out = s.count().collect()
    app.run_batches(4)
    assert out.batches == [(1.0, [3]), (2.0, [0]), (3.0, [1]), (4.0, [0])]


def test_count_after_a_filter_that_drops_everything():
    app, s = queue([[1, 3, 5]])
    out = s.filter(lambda x: x % 2 == 0).count().collect()
    app.run_batches(1)
    assert out.batches == [(1.0, [0])]


# -- reduce ---------------------------------------------------------------------------
def test_reduce_gives_nothing_for_an_empty_batch():
    app, s = queue([[1, 2, 3, 4], [], [7]])
    out = s.reduce(operator.add).collect()
    app.run_batches(4)
    assert out.batches == [(1.0, [10]), (2.0, []), (3.0, [7]), (4.0, [])]


def test_reduce_with_max():
    app, s = queue([[3, 9, 2], [-1, -5]])
    out = s.reduce(max).collect()
    app.run_batches(2)
    assert out.batches == [(1.0, [9]), (2.0, [-1])]


# -- count_by_value -------------------------------------------------------------------
def test_count_by_value_and_alias():
    words = [["a", "b", "a", "c", "a"], [], ["b"]]
    app, s = queue(words)
    snake = s.count_by_value().collect()
    camel = s.countByValue().collect()
    app.run_batches(4)
    times = [1.0, 2.0, 3.0, 4.0]
    expected = [(t, dict(Counter(b))) for t, b in zip(times, [*words, []], strict=True)]
    assert dicts(snake) == expected
    assert dicts(camel) == expected


def test_count_by_value_of_pairs_counts_whole_records():
    app, s = queue([[("a", 1), ("a", 1), ("a", 2)]])
    out = s.count_by_value().collect()
    app.run_batches(1)
    assert sorted(out.batches[0][1]) == [(("a", 1), 2), (("a", 2), 1)]


def test_design_doc_example():
    app = kstream.App("t", batch_interval=1.0)
    s = app.queue_stream([["a b", "b"], [], ["a"]])
    out = s.flat_map(str.split).count_by_value().collect()
    app.run_batches(3)
    assert [(t, sorted(r)) for t, r in out.batches] == [
        (1.0, [("a", 1), ("b", 2)]),
        (2.0, []),
        (3.0, [("a", 1)]),
    ]


# -- reduce_by_key --------------------------------------------------------------------
def test_reduce_by_key_and_alias():
    pairs = [[("a", 1), ("b", 2), ("a", 3), ("a", 5)], [], [("b", 1)]]
    app, s = queue(pairs)
    snake = s.reduce_by_key(operator.add).collect()
    camel = s.reduceByKey(lambda x, y: x + y).collect()
    app.run_batches(3)
    expected = [(1.0, {"a": 9, "b": 2}), (2.0, {}), (3.0, {"b": 1})]
    assert dicts(snake) == expected
    assert dicts(camel) == expected


def test_reduce_by_key_single_value_is_untouched():
    calls = []

    def add(x, y):
        calls.append((x, y))
        return x + y

    app, s = queue([[("only", 42)]])
    out = s.reduce_by_key(add).collect()
    app.run_batches(1)
    assert out.batches == [(1.0, [("only", 42)])]
    assert calls == []


def test_reduce_by_key_with_num_partitions():
    app, s = queue([[("x", 2), ("y", 3), ("x", 4)]])
    out = s.reduce_by_key(operator.mul, num_partitions=4).collect()
    app.run_batches(1)
    assert dicts(out) == [(1.0, {"x": 8, "y": 3})]


def test_word_count():
    lines = [["to be or", "not to be"], [], ["be quick"]]
    app, s = queue(lines)
    out = s.flat_map(str.split).map(lambda w: (w, 1)).reduce_by_key(operator.add).collect()
    app.run_batches(4)
    expected = [
        (1.0, {"to": 2, "be": 2, "or": 1, "not": 1}),
        (2.0, {}),
        (3.0, {"be": 1, "quick": 1}),
        (4.0, {}),
    ]
    assert dicts(out) == expected


def test_reduce_by_key_on_an_already_keyed_stream():
    # The second reduce_by_key needs no shuffle (same keys); it must still combine.
    app, s = queue([[("a", 1), ("b", 1), ("a", 1)], [("c", 5)]])
    first = s.reduce_by_key(operator.add)
    swapped = first.filter(lambda kv: True).flat_map_values(lambda v: [v, v * 100])
    out = swapped.reduce_by_key(operator.add).collect()
    app.run_batches(2)
    assert dicts(out) == [(1.0, {"a": 202, "b": 101}), (2.0, {"c": 505})]


def test_map_after_reduce_by_key_then_reduce_by_key_again():
    words = [["apple", "avocado", "banana", "apple", "blueberry", "cherry"]]
    app, s = queue(words)
    per_word = s.map(lambda w: (w, 1)).reduce_by_key(operator.add)
    per_letter = per_word.map(lambda kv: (kv[0][0], kv[1])).reduce_by_key(operator.add)
    out = per_letter.collect()
    app.run_batches(1)
    expected = Counter(w[0] for w in words[0])
    assert dicts(out) == [(1.0, dict(expected))]


# -- group_by_key ---------------------------------------------------------------------
def test_group_by_key_gives_lists_and_alias():
    pairs = [[("a", 1), ("b", 2), ("a", 3), ("a", 1)], [], [("z", None)]]
    app, s = queue(pairs)
    snake = s.group_by_key().collect()
    camel = s.groupByKey().collect()
    app.run_batches(3)
    expected = [(1.0, {"a": [1, 1, 3], "b": [2]}), (2.0, {}), (3.0, {"z": [None]})]
    assert groups(snake) == expected
    assert groups(camel) == expected


def test_group_by_key_on_an_already_keyed_stream():
    app, s = queue([[("a", 1), ("a", 2), ("b", 3)]])
    out = s.reduce_by_key(operator.add).flat_map_values(lambda v: [v, -v]).group_by_key()
    got = out.collect()
    app.run_batches(1)
    assert groups(got) == [(1.0, {"a": [-3, 3], "b": [-3, 3]})]


# -- repartition ----------------------------------------------------------------------
@pytest.mark.parametrize("n", [1, 3, 16])
def test_repartition_keeps_every_record(n):
    data = [["a", "b", "a", ("k", 1)], [], [1, 2, 3]]
    app, s = queue(data)
    out = s.repartition(n).collect()
    app.run_batches(3)
    assert [(t, Counter(r)) for t, r in out.batches] == [
        (1.0, Counter(data[0])),
        (2.0, Counter()),
        (3.0, Counter(data[2])),
    ]


# -- scale and clock ------------------------------------------------------------------
def test_thousand_batches_of_word_counts():
    vocabulary = ["red", "green", "blue", "cyan", "magenta"]
    batches = []
    for i in range(1000):
        words = [vocabulary[(i * 7 + j) % len(vocabulary)] for j in range(i % 13)]
        batches.append([" ".join(words[:3]), " ".join(words[3:])] if words else [])
    app, s = queue(batches)
    counts = s.flat_map(str.split).map(lambda w: (w, 1)).reduce_by_key(operator.add).collect()
    totals = s.flat_map(str.split).count().collect()
    app.run_batches(1000)

    expected = [
        (float(i + 1), dict(Counter(w for line in b for w in line.split())))
        for i, b in enumerate(batches)
    ]
    assert dicts(counts) == expected
    assert totals.batches == [
        (float(i + 1), [sum(len(line.split()) for line in b)]) for i, b in enumerate(batches)
    ]


def test_keyed_results_continue_across_run_batches_calls():
    app, s = queue([[("a", 1), ("a", 2)], [("a", 5)], [("b", 1), ("b", 1)]])
    out = s.reduce_by_key(operator.add).collect()
    counts = s.count().collect()
    app.run_batches(1)
    app.run_batches(3)
    assert dicts(out) == [(1.0, {"a": 3}), (2.0, {"a": 5}), (3.0, {"b": 2}), (4.0, {})]
    assert counts.batches == [(1.0, [2]), (2.0, [1]), (3.0, [2]), (4.0, [0])]


def test_reduce_by_key_add_keeps_the_type_of_unit_values():
    app = kstream.App("t", batch_interval=1.0)
    s = app.queue_stream([[("a", 1.0), ("a", 1.0), ("b", 1.0)], [("a", True), ("a", True)]])
    out = s.reduce_by_key(operator.add).collect()
    app.run_batches(2)
    first, second = (dict(records) for _, records in out.batches)
    assert first == {"a": 2.0, "b": 1.0} and type(first["a"]) is float
    assert second == {"a": 2} and type(second["a"]) is int
