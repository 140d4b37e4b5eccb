"""DStream: the operator API. Each method adds a node to the app's graph; nothing runs yet."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from kstream.graph import Node, Operator
from kstream.ops import joins, keyed, sinks, stateless
from kstream.ops.shuffle import BY_KEY, BY_RECORD, GLOBAL, Shuffle

if TYPE_CHECKING:
    from kstream.app import App


class DStream:
    """A stream of batches. Pair streams hold `(key, value)` tuples."""

    def __init__(self, app: App, node: Node):
        self.app = app
        self.node = node

    # -- building blocks -------------------------------------------------------------
    def _derive(self, op: Operator, keep_partitioning: bool = False) -> DStream:
        node = self.app._add_node(op, (self.node,), keep_partitioning and self.node.key_partitioned)
        return DStream(self.app, node)

    def _through_shuffle(
        self,
        op: Operator,
        streams: list[DStream],
        partitions: int | None = None,
        by: str = BY_KEY,
        force: bool = False,
    ) -> DStream:
        """Add `op` fed by `streams`, inserting a shuffle where records must meet by key."""
        node_id = self.app._next_id()
        target = f"{op.kind}-{node_id}"
        needs_shuffle = (
            force
            or by != BY_KEY
            or len(streams) > 1
            or partitions is not None
            or not streams[0].node.key_partitioned
        )
        combine = getattr(op, "partial", None) if len(streams) == 1 else None
        parents: list[Node] = []
        for side, s in enumerate(streams):
            if needs_shuffle:
                shuffle = Shuffle(target, side, combine, partitions, by)
                parents.append(self.app._add_node(shuffle, (s.node,), False))
            else:
                parents.append(s.node)
        op.pre_combined = needs_shuffle  # type: ignore[attr-defined]
        node = self.app._add_node(op, tuple(parents), by == BY_KEY, node_id=node_id)
        return DStream(self.app, node)

    # -- record-at-a-time ------------------------------------------------------------
    def map(self, fn: Callable[[Any], Any]) -> DStream:
        return self._derive(stateless.Map(fn))

    def flat_map(self, fn: Callable[[Any], Iterable[Any]]) -> DStream:
        return self._derive(stateless.FlatMap(fn))

    def filter(self, fn: Callable[[Any], Any]) -> DStream:
        return self._derive(stateless.Filter(fn), keep_partitioning=True)

    def map_values(self, fn: Callable[[Any], Any]) -> DStream:
        return self._derive(stateless.MapValues(fn), keep_partitioning=True)

    def flat_map_values(self, fn: Callable[[Any], Iterable[Any]]) -> DStream:
        return self._derive(stateless.FlatMapValues(fn), keep_partitioning=True)

    def transform(self, fn: Callable[..., Iterable[Any]]) -> DStream:
        """fn(records) or fn(time_seconds, records) returns the new batch (any iterable)."""
        return self._derive(stateless.Transform(fn))

    def union(self, *others: DStream) -> DStream:
        nodes = (self.node, *(o.node for o in others))
        partitioned = all(n.key_partitioned for n in nodes) and len(nodes) == 1
        return DStream(self.app, self.app._add_node(stateless.Union(), nodes, partitioned))

    # -- whole-batch and keyed -------------------------------------------------------
    def count(self) -> DStream:
        return self._through_shuffle(keyed.Count(), [self], by=GLOBAL)

    def reduce(self, fn: Callable[[Any, Any], Any]) -> DStream:
        return self._through_shuffle(keyed.Reduce(fn), [self], by=GLOBAL)

    def count_by_value(self, num_partitions: int | None = None) -> DStream:
        return self._through_shuffle(keyed.CountByValue(), [self], num_partitions, force=True)

    def reduce_by_key(
        self, fn: Callable[[Any, Any], Any], num_partitions: int | None = None
    ) -> DStream:
        return self._through_shuffle(keyed.ReduceByKey(fn), [self], num_partitions)

    def group_by_key(self, num_partitions: int | None = None) -> DStream:
        return self._through_shuffle(keyed.GroupByKey(), [self], num_partitions)

    def repartition(self, num_partitions: int) -> DStream:
        if not isinstance(num_partitions, int) or num_partitions < 1:
            from kstream.errors import ConfigError

            raise ConfigError(f"repartition: num_partitions must be >= 1, got {num_partitions!r}")
        op = keyed.Repartition(num_partitions)
        return self._through_shuffle(op, [self], num_partitions, by=BY_RECORD)

    def cogroup(self, other: DStream, num_partitions: int | None = None) -> DStream:
        return self._through_shuffle(joins.Cogroup(), [self, other], num_partitions)

    def join(self, other: DStream, num_partitions: int | None = None) -> DStream:
        return self._through_shuffle(joins.Join("inner"), [self, other], num_partitions)

    def left_outer_join(self, other: DStream, num_partitions: int | None = None) -> DStream:
        return self._through_shuffle(joins.Join("left"), [self, other], num_partitions)

    def right_outer_join(self, other: DStream, num_partitions: int | None = None) -> DStream:
        return self._through_shuffle(joins.Join("right"), [self, other], num_partitions)

    def full_outer_join(self, other: DStream, num_partitions: int | None = None) -> DStream:
        return self._through_shuffle(joins.Join("full"), [self, other], num_partitions)

    # -- outputs ---------------------------------------------------------------------
    def pprint(self, num: int = 10) -> None:
        self._derive(sinks.Pprint(num))

    def collect(self) -> sinks.Collected:
        """Keep every batch's records in memory (tests, notebooks): `.batches`."""
        target = sinks.Collected()
        self._derive(sinks.Collect(target))
        return target

    def foreach_batch(self, fn: Callable[..., Any]) -> None:
        self._derive(sinks.ForeachBatch(fn))

    def to(self, topic: str, key_serde: str = "auto", value_serde: str = "auto") -> None:
        """Write each batch to `topic`: pairs as key and value, anything else as the value."""
        from kstream.serde import serializer

        serializer(key_serde, "key_serde")
        serializer(value_serde, "value_serde")
        self._derive(sinks.To(topic, key_serde, value_serde))


# Spark's camelCase names, so PySpark programs run unchanged through kstream.compat.
SPARK_NAMES = {
    "flatMap": "flat_map",
    "mapValues": "map_values",
    "flatMapValues": "flat_map_values",
    "countByValue": "count_by_value",
    "reduceByKey": "reduce_by_key",
    "groupByKey": "group_by_key",
    "leftOuterJoin": "left_outer_join",
    "rightOuterJoin": "right_outer_join",
    "fullOuterJoin": "full_outer_join",
    "foreachRDD": "foreach_batch",
}
for _spark, _ours in SPARK_NAMES.items():
    setattr(DStream, _spark, getattr(DStream, _ours))
