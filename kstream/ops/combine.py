"""Combine by key: the one primitive every grouping operator is built on.

As in Spark (PySpark's rdd.py builds reduceByKey, groupByKey, foldByKey and
aggregateByKey on combineByKey), a `Combiner` is three functions: `create(v)` turns a
key's first value into a combiner, `merge_value(c, v)` adds the next value to it, and
`merge_combiners(c1, c2)` joins two combiners. Upstream of the shuffle each task combines
its own values (`partial`, Spark's map-side combine); after it, the combiners of the
tasks are joined (`merge`). Grouping keeps every value, so nothing is gained by combining
before the shuffle: its values cross it as they are and are combined after it.

Keys keep the order in which they first appear, and so do a key's values.
"""

from __future__ import annotations

import copy
import operator
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from typing import Any

from kstream.graph import Batch

_NONE = object()

Pairs = Iterable[tuple[Any, Any]]


def reduce_pairs(fn: Callable[[Any, Any], Any], pairs: Pairs) -> Batch:
    """Per key, fn over its values in order. One pass over any iterable: as the reader of
    a chain of record operators it runs with no list of the pairs (kstream.graph); that
    beat a Counter over a list of (key, 1) pairs by 2x."""
    acc: dict[Any, Any] = {}
    get = acc.get
    for k, v in pairs:
        held = get(k, _NONE)
        acc[k] = v if held is _NONE else fn(held, v)
    return list(acc.items())


def combine_pairs(
    create: Callable[[Any], Any], merge_value: Callable[[Any, Any], Any], pairs: Pairs
) -> Batch:
    """Per key, create from its first value, then merge_value with each next one."""
    acc: dict[Any, Any] = {}
    get = acc.get
    for k, v in pairs:
        held = get(k, _NONE)
        acc[k] = create(v) if held is _NONE else merge_value(held, v)
    return list(acc.items())


class Combiner:
    """Spark's Aggregator: how the values of one key become one combined value.

    `create` None means a key's first value is its combiner (reduceByKey's identity),
    which saves a call per key on the hot path of word counts. `merge_combiners` must
    leave its arguments unchanged: they may still be read (a batch run again).
    """

    def __init__(
        self,
        create: Callable[[Any], Any] | None,
        merge_value: Callable[[Any, Any], Any],
        merge_combiners: Callable[[Any, Any], Any],
        map_side_combine: bool = True,
    ):
        self.create = create
        self.merge_value = merge_value
        self.merge_combiners = merge_combiners
        self.map_side_combine = map_side_combine

    def combine_values(self, pairs: Pairs) -> Batch:
        """(key, value) pairs to one (key, combiner) per key."""
        if self.create is None:
            return reduce_pairs(self.merge_value, pairs)
        return combine_pairs(self.create, self.merge_value, pairs)

    def combine_combiners(self, pairs: Pairs) -> Batch:
        """(key, combiner) pairs, e.g. of several tasks, to one per key."""
        return reduce_pairs(self.merge_combiners, pairs)

    def partial(self, batch: Batch) -> Batch:
        """What one task sends through the shuffle: without a map-side combine, its batch
        as it is (a list then: an operator streams `partial` only when it combines)."""
        return self.combine_values(batch) if self.map_side_combine else batch

    def merge(self, batch: Pairs) -> Batch:
        """The result from what the tasks sent through the shuffle."""
        if self.map_side_combine:
            return self.combine_combiners(batch)
        return self.combine_values(batch)


def reducing(fn: Callable[[Any, Any], Any]) -> Combiner:
    """reduceByKey(fn): combineByKey(identity, fn, fn)."""
    return Combiner(None, fn, fn)


def aggregating(
    zero: Any, seq_fn: Callable[[Any, Any], Any], comb_fn: Callable[[Any, Any], Any]
) -> Combiner:
    """aggregateByKey(zero, seq_fn, comb_fn): each key starts from its own deep copy of
    `zero`, as in Spark, so a mutable zero is never shared between keys."""

    def create(v: Any) -> Any:
        return seq_fn(copy.deepcopy(zero), v)

    return Combiner(create, seq_fn, comb_fn)


class ValueCounter(Combiner):
    """countByValue: Spark's map(lambda x: (x, 1)).reduceByKey(add). Its map-side combine
    takes the records themselves and counts them with Counter (C), faster than their
    (x, 1) pairs through reduce_pairs."""

    def __init__(self) -> None:
        super().__init__(None, operator.add, operator.add)

    def partial(self, batch: Iterable[Any]) -> Batch:
        return list(Counter(batch).items())


def _singleton(v: Any) -> list[Any]:
    return [v]


def _append(values: list[Any], v: Any) -> list[Any]:
    values.append(v)  # a list `_singleton` made for this combine: ours to change
    return values


class Grouping(Combiner):
    """groupByKey: each key's values as a list, Combiner([v], append, +). Like Spark,
    without a map-side combine by default (it would not make what crosses the shuffle
    any smaller). Both combines are those functions inlined (a call per value made
    group_by_key 2.7x slower), and `combine_combiners` extends a new list per key, which
    leaves the lists given unchanged and is linear where + over them is quadratic."""

    def __init__(self, map_side_combine: bool = False):
        super().__init__(_singleton, _append, operator.add, map_side_combine)

    def combine_values(self, pairs: Pairs) -> Batch:
        groups: defaultdict[Any, list[Any]] = defaultdict(list)
        for k, v in pairs:
            groups[k].append(v)
        return list(groups.items())

    def combine_combiners(self, pairs: Pairs) -> Batch:
        groups: defaultdict[Any, list[Any]] = defaultdict(list)
        for k, values in pairs:
            groups[k].extend(values)
        return list(groups.items())
