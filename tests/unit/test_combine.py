"""The combine-by-key primitive (kstream/ops/combine.py): Spark's createCombiner,
mergeValue and mergeCombiners, before and after the shuffle."""

from __future__ import annotations

import operator
from collections import Counter

import pytest

from kstream.ops.combine import (
    Combiner,
    Grouping,
    ValueCounter,
    aggregating,
    combine_pairs,
    reduce_pairs,
    reducing,
)

PAIRS = [("a", 1), ("b", 2), ("a", 3), ("c", 4), ("b", 5), ("a", 6)]


def mean_combiner(**kw) -> Combiner:
    """(sum, count) per key: a combiner of another type than the values."""
    return Combiner(
        lambda v: (v, 1),
        lambda c, v: (c[0] + v, c[1] + 1),
        lambda c1, c2: (c1[0] + c2[0], c1[1] + c2[1]),
        **kw,
    )


def across_tasks(combiner: Combiner, tasks: list[list]) -> list:
    """What a shuffle does: each task's `partial`, then one `merge` of all they sent."""
    return combiner.merge([r for task in tasks for r in combiner.partial(task)])


def test_combine_values_creates_on_a_keys_first_value_and_merges_the_rest_in_order():
    calls = []

    def create(v):
        calls.append(("create", v))
        return [v]

    def merge_value(c, v):
        calls.append(("merge", v))
        return [*c, v]

    got = Combiner(create, merge_value, operator.add).combine_values(iter(PAIRS))
    assert got == [("a", [1, 3, 6]), ("b", [2, 5]), ("c", [4])]  # keys in first-seen order
    assert [c for c in calls if c[0] == "create"] == [("create", 1), ("create", 2), ("create", 4)]
    assert len(calls) == len(PAIRS)


def test_combine_pairs_and_reduce_pairs_read_any_iterable_once():
    got = combine_pairs(str, lambda c, v: c + str(v), iter(PAIRS))
    assert got == [("a", "136"), ("b", "25"), ("c", "4")]
    assert reduce_pairs(operator.add, iter(PAIRS)) == [("a", 10), ("b", 7), ("c", 4)]


def test_without_create_a_keys_first_value_is_its_combiner():
    calls = []

    def add(x, y):
        calls.append((x, y))
        return x + y

    assert reducing(add).combine_values([("only", 42)]) == [("only", 42)]
    assert calls == []


@pytest.mark.parametrize("split", [0, 1, 3, 6])
def test_a_combine_across_tasks_equals_one_over_the_whole_batch(split):
    tasks = [PAIRS[:split], PAIRS[split:]]
    expected = [("a", (10, 3)), ("b", (7, 2)), ("c", (4, 1))]
    assert sorted(across_tasks(mean_combiner(), tasks)) == expected
    assert sorted(across_tasks(mean_combiner(map_side_combine=False), tasks)) == expected


def test_the_tasks_combiners_are_joined_with_merge_combiners():
    joined = []

    def merge_combiners(c1, c2):
        joined.append((c1, c2))
        return c1 + c2

    combiner = Combiner(None, operator.add, merge_combiners)
    got = across_tasks(combiner, [[("a", 1), ("a", 2)], [("a", 10), ("b", 1)]])
    assert got == [("a", 13), ("b", 1)]
    assert joined == [(3, 10)]


def test_without_a_map_side_combine_the_batch_crosses_the_shuffle_as_it_is():
    batch = list(PAIRS)
    assert mean_combiner(map_side_combine=False).partial(batch) is batch
    assert mean_combiner().partial(batch) == [("a", (10, 3)), ("b", (7, 2)), ("c", (4, 1))]


def test_aggregating_starts_every_key_from_its_own_copy_of_zero():
    zero: list = []

    def seq(acc, v):
        acc.append(v)  # changes its accumulator in place: a shared zero would show
        return acc

    combiner = aggregating(zero, seq, operator.add)
    got = dict(across_tasks(combiner, [[("a", 1), ("b", 2)], [("a", 3)]]))
    assert got == {"a": [1, 3], "b": [2]}
    assert zero == []


def test_value_counter_counts_records_as_their_x_1_pairs_would():
    words = ["a", "b", "a", ("k", 1), "a", ("k", 1)]
    counter = ValueCounter()
    generic = Combiner(counter.create, counter.merge_value, counter.merge_combiners)
    assert counter.partial(iter(words)) == generic.partial([(w, 1) for w in words])
    tasks = [words[:2], words[2:]]
    assert dict(across_tasks(counter, tasks)) == dict(Counter(words))


def test_grouping_inlines_its_functions():
    grouping = Grouping()
    generic = Combiner(grouping.create, grouping.merge_value, grouping.merge_combiners)
    assert grouping.combine_values(iter(PAIRS)) == generic.combine_values(PAIRS)
    groups = [("a", [1]), ("b", [2]), ("a", [3, 6])]
    assert grouping.combine_combiners(groups) == generic.combine_combiners(groups)
    assert dict(across_tasks(Grouping(map_side_combine=True), [PAIRS[:2], PAIRS[2:]])) == {
        "a": [1, 3, 6],
        "b": [2, 5],
        "c": [4],
    }


def test_grouping_leaves_the_lists_it_joins_unchanged():
    first, second = [1, 2], [3]
    got = Grouping().combine_combiners([("a", first), ("b", [9]), ("a", second)])
    assert got == [("a", [1, 2, 3]), ("b", [9])]
    assert first == [1, 2] and second == [3]
