"""Operators that need all records of a key (or of the whole batch) together.

Each has `partial` (run upstream of the shuffle, per task: Spark's map-side combine) and
`merge` (run after it). Locally the shuffle node runs `partial` too, so a pipeline takes
the same code path with one process as with many.
"""

from __future__ import annotations

import functools
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from typing import Any

from kstream.graph import Batch, Operator


class Aggregation(Operator):
    """Base for operators fed through a shuffle (or directly, when already partitioned)."""

    # whether its input crossed a shuffle that ran `partial` already; the operators that
    # may read a stream partitioned by key directly take it as an argument (kstream/dstream.py)
    pre_combined = True

    def partial(self, batch: Batch) -> Batch:
        return batch

    def merge(self, batch: Batch) -> Batch:
        raise NotImplementedError

    def apply(self, inputs, t):
        (x,) = inputs
        if x is None:
            return None
        return self.merge(x if self.pre_combined else self.partial(x))


_NONE = object()


def reduce_pairs(fn: Callable[[Any, Any], Any], pairs: Iterable[tuple[Any, Any]]) -> Batch:
    """Per key, fn over its values in order. One pass over any iterable: as the reader of
    a chain of record operators it runs with no list of the pairs (kstream.graph); that
    beat a Counter over a list of (key, 1) pairs by 2x."""
    acc: dict[Any, Any] = {}
    get = acc.get
    for k, v in pairs:
        held = get(k, _NONE)
        acc[k] = v if held is _NONE else fn(held, v)
    return list(acc.items())


class ReduceByKey(Aggregation):
    kind = "reduce_by_key"
    partial_streams = True

    def __init__(self, fn: Callable[[Any, Any], Any], pre_combined: bool = True):
        self.fn = fn
        self.pre_combined = pre_combined

    def partial(self, batch):
        return reduce_pairs(self.fn, batch)

    def merge(self, batch):
        return reduce_pairs(self.fn, batch)


class CountByValue(Aggregation):
    kind = "count_by_value"
    partial_streams = True

    def partial(self, batch):
        return list(Counter(batch).items())

    def merge(self, batch):
        counts: Counter[Any] = Counter()
        for v, n in batch:
            counts[v] += n
        return list(counts.items())


class GroupByKey(Aggregation):
    kind = "group_by_key"

    def __init__(self, pre_combined: bool = True):
        self.pre_combined = pre_combined

    def merge(self, batch):
        groups: defaultdict[Any, list[Any]] = defaultdict(list)
        for k, v in batch:
            groups[k].append(v)
        return list(groups.items())


class Count(Aggregation):
    """count(): one number per batch, 0 for an empty batch (Spark's semantics)."""

    kind = "count"

    def partial(self, batch):
        return [len(batch)]

    def merge(self, batch):
        return [sum(batch)]


class Reduce(Aggregation):
    """reduce(fn): one value per non-empty batch, nothing for an empty one."""

    kind = "reduce"

    def __init__(self, fn: Callable[[Any, Any], Any]):
        self.fn = fn

    def partial(self, batch):
        return [functools.reduce(self.fn, batch)] if batch else []

    def merge(self, batch):
        return self.partial(batch)


class Repartition(Aggregation):
    """repartition(n): records spread evenly over n partitions; values unchanged."""

    kind = "repartition"

    def __init__(self, partitions: int):
        self.partitions = partitions

    def merge(self, batch):
        return batch
