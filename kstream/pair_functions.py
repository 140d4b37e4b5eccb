"""The per-key aggregations of pair streams (Spark's PairDStreamFunctions), kept out of
kstream/dstream.py: each is combine_by_key with its own Combiner (kstream/ops/combine.py),
read through a BY_KEY shuffle unless the stream is already partitioned by key."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from kstream.errors import ConfigError
from kstream.ops import keyed
from kstream.ops.combine import Combiner

Stream = TypeVar("Stream")


class PairFunctions(Generic[Stream]):
    """Mixed into DStream (as `PairFunctions["DStream"]`, so this module needs no import
    of it), whose `_through_shuffle` adds the operator and its shuffle."""

    if TYPE_CHECKING:
        _through_shuffle: Callable[..., Stream]
        _reads_by_key: Callable[[int | None, bool], bool]

    def combine_by_key(
        self,
        create: Callable[[Any], Any],
        merge_value: Callable[[Any, Any], Any],
        merge_combiners: Callable[[Any, Any], Any],
        num_partitions: int | None = None,
        name: str | None = None,
        serde: str | None = None,
    ) -> Stream:
        """Spark's combineByKey: per key, create(v) of its first value, merge_value(c, v)
        with each next one (in each worker, before the shuffle), merge_combiners(c1, c2)
        to join the workers' combiners after it. Emits (key, combiner) per key. Unlike
        Spark's, merge_combiners must not change its arguments: a batch taken apart after
        a poison record runs again on them (kstream/poison.py)."""
        what = "combine_by_key"
        _functions(what, create=create, merge_value=merge_value, merge_combiners=merge_combiners)
        combiner = Combiner(create, merge_value, merge_combiners)
        op = keyed.CombineByKey(combiner, self._shuffled(num_partitions))
        return self._by_key(op, num_partitions, name, serde)

    def aggregate_by_key(
        self,
        zero: Any,
        seq_fn: Callable[[Any, Any], Any],
        comb_fn: Callable[[Any, Any], Any],
        num_partitions: int | None = None,
        name: str | None = None,
        serde: str | None = None,
    ) -> Stream:
        """Spark's aggregateByKey: per key, seq_fn(acc, v) folds its values into a copy of
        `zero`; comb_fn(acc1, acc2) joins the workers' results."""
        _functions("aggregate_by_key", seq_fn=seq_fn, comb_fn=comb_fn)
        op = keyed.AggregateByKey(zero, seq_fn, comb_fn, self._shuffled(num_partitions))
        return self._by_key(op, num_partitions, name, serde)

    def fold_by_key(
        self,
        zero: Any,
        fn: Callable[[Any, Any], Any],
        num_partitions: int | None = None,
        name: str | None = None,
        serde: str | None = None,
    ) -> Stream:
        """Spark's foldByKey: aggregate_by_key(zero, fn, fn)."""
        _functions("fold_by_key", fn=fn)
        op = keyed.FoldByKey(zero, fn, self._shuffled(num_partitions))
        return self._by_key(op, num_partitions, name, serde)

    def reduce_by_key(
        self,
        fn: Callable[[Any, Any], Any],
        num_partitions: int | None = None,
        name: str | None = None,
        serde: str | None = None,
    ) -> Stream:
        op = keyed.ReduceByKey(fn, self._shuffled(num_partitions))
        return self._by_key(op, num_partitions, name, serde)

    def group_by_key(
        self, num_partitions: int | None = None, name: str | None = None, serde: str | None = None
    ) -> Stream:
        op = keyed.GroupByKey(self._shuffled(num_partitions))
        return self._by_key(op, num_partitions, name, serde)

    def _shuffled(self, partitions: int | None, keeps_state: bool = False) -> bool:
        """Whether the operator's input crosses a shuffle, which combines each task's
        values before it (`pre_combined`), or is read as it is, already by key."""
        return not self._reads_by_key(partitions, keeps_state)

    def _by_key(
        self, op: keyed.CombineByKey, partitions: int | None, name: str | None, serde: str | None
    ) -> Stream:
        return self._through_shuffle(op, [self], partitions, serde=serde, name=name)


def _functions(what: str, **fns: Any) -> None:
    """Refuse a combine whose functions are not all callable, before anything runs."""
    for arg, fn in fns.items():
        if not callable(fn):
            raise ConfigError(f"{what}: {arg}={fn!r}: give a function")
