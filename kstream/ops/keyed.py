"""Operators that need all records of a key (or of the whole batch) together.

Each has `partial` (run upstream of the shuffle, per task: Spark's map-side combine) and
`merge` (run after it). Locally the shuffle node runs `partial` too, so a pipeline takes
the same code path with one process as with many. The per-key ones are all
`CombineByKey` with a different `Combiner` (kstream/ops/combine.py), as Spark builds
them all on combineByKey.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from kstream.graph import Batch, Operator
from kstream.ops.combine import Combiner, Grouping, ValueCounter, aggregating, reducing


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


class CombineByKey(Aggregation):
    """combine_by_key: per key, the values combined by a `Combiner` (kstream.ops.combine);
    every per-key aggregation below is one of these, configured."""

    kind = "combine_by_key"

    def __init__(self, combiner: Combiner, pre_combined: bool = True):
        self.combiner = combiner
        self.pre_combined = pre_combined
        self.partial_streams = combiner.map_side_combine  # grouping's partial passes lists

    def partial(self, batch):
        return self.combiner.partial(batch)

    def merge(self, batch):
        return self.combiner.merge(batch)


class ReduceByKey(CombineByKey):
    kind = "reduce_by_key"

    def __init__(self, fn: Callable[[Any, Any], Any], pre_combined: bool = True):
        super().__init__(reducing(fn), pre_combined)
        self.fn = fn  # names the operator (kstream/names.py)


class AggregateByKey(CombineByKey):
    """aggregate_by_key(zero, seq_fn, comb_fn): per key, seq_fn folds its values into a
    copy of zero; comb_fn joins the results of two tasks."""

    kind = "aggregate_by_key"

    def __init__(
        self,
        zero: Any,
        seq_fn: Callable[[Any, Any], Any],
        comb_fn: Callable[[Any, Any], Any],
        pre_combined: bool = True,
    ):
        super().__init__(aggregating(zero, seq_fn, comb_fn), pre_combined)
        self.fn = seq_fn


class FoldByKey(AggregateByKey):
    """fold_by_key(zero, fn): aggregate_by_key(zero, fn, fn)."""

    kind = "fold_by_key"

    def __init__(self, zero: Any, fn: Callable[[Any, Any], Any], pre_combined: bool = True):
        super().__init__(zero, fn, fn, pre_combined)


class CountByValue(CombineByKey):
    kind = "count_by_value"

    def __init__(self) -> None:
        super().__init__(ValueCounter())


class GroupByKey(CombineByKey):
    kind = "group_by_key"

    def __init__(self, pre_combined: bool = True) -> None:
        super().__init__(Grouping(), pre_combined)


def reduce_all(fn: Callable[[Any, Any], Any], batch: Batch) -> Batch:
    """fn over the whole batch: one value, or none for an empty batch."""
    return [functools.reduce(fn, batch)] if batch else []


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
        return reduce_all(self.fn, batch)

    def merge(self, batch):
        return reduce_all(self.fn, batch)


class Repartition(Aggregation):
    """repartition(n): records spread evenly over n partitions; values unchanged."""

    kind = "repartition"

    def __init__(self, partitions: int):
        self.partitions = partitions

    def merge(self, batch):
        return batch
