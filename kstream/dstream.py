"""DStream: the operator API. Each method adds a node to the app's graph; nothing runs yet."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from kstream.codec import SERDES
from kstream.dead_letters import operator_name
from kstream.errors import ConfigError, require_function
from kstream.graph import Node, Operator
from kstream.ops import joins, keyed, sinks, state_ops, stateless
from kstream.ops.shuffle import Shuffle
from kstream.ops.stateful import Stateful
from kstream.pair_functions import PairFunctions
from kstream.partitioning import BY_KEY, BY_RECORD, GLOBAL, Partitioning
from kstream.settings import interval_ms
from kstream.spark_names import add_spark_names
from kstream.window_functions import WindowFunctions

if TYPE_CHECKING:
    from kstream.builder import GraphBuilder


class DStream(PairFunctions["DStream"], WindowFunctions["DStream"]):
    """A stream of batches. Pair streams hold `(key, value)` tuples; their per-key
    aggregations (reduce_by_key, combine_by_key, ...) are in kstream/pair_functions.py,
    the window operators in kstream/window_functions.py.

    Every operator that reads through a repartition topic, or keeps state, takes
    `serde`: the internal format of that topic and state (kstream/codec.py), by default
    the app's `internal_serde`. "pickle" carries any value; anyone who can write the
    topic can then run code in the app's workers.

    Each stream knows whether its records are spread over tasks by key (`Node.partitioning`,
    kstream/partitioning.py): an operator that needs a key's records together reads such
    a stream without a shuffle. map_values, flat_map_values, filter and the keyed
    operators keep it; map, flat_map and transform may change keys, so they lose it
    unless told `preserves_partitioning=True` (Spark's mapPartitions).
    """

    def __init__(self, graph: GraphBuilder, node: Node):
        self.graph = graph
        self.node = node

    # -- building blocks -------------------------------------------------------------
    def _derive(self, op: Operator, keep_partitioning: bool = False) -> DStream:
        partitioning = self.node.partitioning if keep_partitioning else None
        return DStream(self.graph, self.graph.add(op, (self.node,), partitioning))

    def _through_shuffle(
        self,
        op: Operator,
        streams: list[DStream],
        partitions: int | None = None,
        by: str = BY_KEY,
        force: bool = False,
        serde: str | None = None,
        name: str | None = None,
    ) -> DStream:
        """Add `op` fed by `streams`, inserting a shuffle where records must meet by key.
        `name` (or a default, kstream/names.py) names its state and repartition topic."""
        if serde is not None and serde not in SERDES:
            raise ConfigError(f"{op.kind}: serde={serde!r}: choose one of {', '.join(SERDES)}")
        op.serde = serde
        node_id = self.graph.new_id()
        target = self.graph.names.claim(op, name)
        needs_shuffle = force or by != BY_KEY or not _read_as_they_are(streams, partitions, op)
        combine = getattr(op, "partial", None) if len(streams) == 1 else None
        parents: list[Node] = []
        for side, s in enumerate(streams):
            if needs_shuffle:
                streaming = combine is not None and op.partial_streams
                shuffle = Shuffle(target, side, combine, partitions, by, streaming)
                parents.append(self.graph.add(shuffle, (s.node,), None))
            else:
                parents.append(s.node)
        partitioning = streams[0].node.partitioning
        if needs_shuffle:
            partitioning = Partitioning(target, partitions) if by == BY_KEY else None
        node = self.graph.add(op, tuple(parents), partitioning, node_id, target)
        return DStream(self.graph, node)

    def _reads_by_key(self, partitions: int | None, keeps_state: bool = False) -> bool:
        """Whether a keyed operator can read this stream as it is, without a shuffle: it
        is partitioned by key already, into the partition count asked for if any
        (`Partitioning.serves`). An aggregation fed so combines its batch itself
        (`pre_combined=False`)."""
        partitioning = self.node.partitioning
        return partitioning is not None and partitioning.serves(partitions, keeps_state)

    # -- record-at-a-time ------------------------------------------------------------
    def map(self, fn: Callable[[Any], Any], preserves_partitioning: bool = False) -> DStream:
        """fn(record) for each record. `preserves_partitioning=True` (Spark's mapPartitions
        argument) promises that fn keeps each pair's key, so a keyed operator downstream
        reads the result without a shuffle; a broken promise gives wrong per-key results."""
        return self._derive(stateless.Map(fn), preserves_partitioning)

    def flat_map(
        self, fn: Callable[[Any], Iterable[Any]], preserves_partitioning: bool = False
    ) -> DStream:
        """The records of fn(record) for each record; `preserves_partitioning` as in map."""
        return self._derive(stateless.FlatMap(fn), preserves_partitioning)

    def filter(self, fn: Callable[[Any], Any]) -> DStream:
        return self._derive(stateless.Filter(fn), keep_partitioning=True)

    def map_values(self, fn: Callable[[Any], Any]) -> DStream:
        return self._derive(stateless.MapValues(fn), keep_partitioning=True)

    def flat_map_values(self, fn: Callable[[Any], Iterable[Any]]) -> DStream:
        return self._derive(stateless.FlatMapValues(fn), keep_partitioning=True)

    def transform(
        self, fn: Callable[..., Iterable[Any]], preserves_partitioning: bool = False
    ) -> DStream:
        """fn(records) or fn(time_seconds, records) returns the new batch (any iterable);
        `preserves_partitioning=True`: each of its pairs has the key of a pair it read
        (as in map)."""
        return self._derive(stateless.Transform(fn), preserves_partitioning)

    def union(self, *others: DStream) -> DStream:
        """The records of all the streams; still spread by key when all come out of one
        shuffle (each key's records of all of them in one task)."""
        nodes = (self.node, *(o.node for o in others))
        first = self.node.partitioning
        kept = len(nodes) == 1 or all(
            first is not None and first.co_located(n.partitioning) for n in nodes[1:]
        )
        partitioning = first if kept else None
        return DStream(self.graph, self.graph.add(stateless.Union(), nodes, partitioning))

    # -- whole-batch and keyed -------------------------------------------------------
    def count(self, name: str | None = None, serde: str | None = None) -> DStream:
        return self._through_shuffle(keyed.Count(), [self], by=GLOBAL, serde=serde, name=name)

    def reduce(
        self, fn: Callable[[Any, Any], Any], name: str | None = None, serde: str | None = None
    ) -> DStream:
        return self._through_shuffle(keyed.Reduce(fn), [self], by=GLOBAL, serde=serde, name=name)

    def count_by_value(
        self, num_partitions: int | None = None, name: str | None = None, serde: str | None = None
    ) -> DStream:
        op = keyed.CountByValue()
        return self._through_shuffle(op, [self], num_partitions, force=True, serde=serde, name=name)

    def repartition(
        self, num_partitions: int, name: str | None = None, serde: str | None = None
    ) -> DStream:
        if not isinstance(num_partitions, int) or num_partitions < 1:
            raise ConfigError(f"repartition: num_partitions must be >= 1, got {num_partitions!r}")
        op = keyed.Repartition(num_partitions)
        return self._through_shuffle(
            op, [self], num_partitions, by=BY_RECORD, serde=serde, name=name
        )

    def cogroup(
        self,
        other: DStream,
        num_partitions: int | None = None,
        name: str | None = None,
        serde: str | None = None,
    ) -> DStream:
        return self._through_shuffle(
            joins.Cogroup(), [self, other], num_partitions, serde=serde, name=name
        )

    def join(
        self,
        other: DStream,
        num_partitions: int | None = None,
        name: str | None = None,
        serde: str | None = None,
    ) -> DStream:
        return self._join("inner", other, num_partitions, name, serde)

    def left_outer_join(
        self,
        other: DStream,
        num_partitions: int | None = None,
        name: str | None = None,
        serde: str | None = None,
    ) -> DStream:
        return self._join("left", other, num_partitions, name, serde)

    def right_outer_join(
        self,
        other: DStream,
        num_partitions: int | None = None,
        name: str | None = None,
        serde: str | None = None,
    ) -> DStream:
        return self._join("right", other, num_partitions, name, serde)

    def full_outer_join(
        self,
        other: DStream,
        num_partitions: int | None = None,
        name: str | None = None,
        serde: str | None = None,
    ) -> DStream:
        return self._join("full", other, num_partitions, name, serde)

    def _join(
        self, how: str, other: DStream, partitions: int | None, name: str | None, serde: str | None
    ) -> DStream:
        op = joins.Join(how)
        return self._through_shuffle(op, [self, other], partitions, serde=serde, name=name)

    # -- state across batches ----------------------------------------------------------
    def update_state_by_key(
        self,
        fn: Callable[[list[Any], Any], Any],
        initial: Iterable[tuple[Any, Any]] | None = None,
        num_partitions: int | None = None,
        name: str | None = None,
        serde: str | None = None,
    ) -> DStream:
        """fn(new_values, state) -> new state, or None to delete the key; called for every
        key with new values or a state; emits every key's (key, state) every batch.
        `initial`: (key, state) pairs, the state before the first batch."""
        require_function(fn, "update_state_by_key", "fn")
        pairs = None if initial is None else list(initial)
        op = state_ops.UpdateStateByKey(fn, pairs, self._shuffled(num_partitions, True))
        return self._through_shuffle(op, [self], num_partitions, serde=serde, name=name)

    def map_with_state(
        self,
        spec: state_ops.StateSpec,
        name: str | None = None,
        serde: str | None = None,
        preserves_partitioning: bool = False,
    ) -> MapWithStateDStream:
        """Spark's mapWithState: the records spec.fn returns; `.state_snapshots()` gives
        every (key, state) after each batch. It reads a stream already spread by key
        (the output of a keyed operator) without a shuffle. spec.fn may return any
        record, so the mapped stream is not known to be spread by key unless
        `preserves_partitioning=True` promises that each is a pair of the key it got."""
        if not isinstance(spec, state_ops.StateSpec):
            raise ConfigError(f"map_with_state: spec={spec!r}: give a kstream.StateSpec")
        require_function(spec.fn, "map_with_state", "StateSpec fn")
        timeout = spec.timeout_seconds
        timeout_ms = None if timeout is None else interval_ms(timeout, "StateSpec timeout")
        op = state_ops.MapWithState(spec, timeout_ms)
        tagged = self._through_shuffle(op, [self], spec.partitions, serde=serde, name=name)
        partitioning = tagged.node.partitioning if preserves_partitioning else None
        mapped = self.graph.add(state_ops.Pick(state_ops.MAPPED), (tagged.node,), partitioning)
        return MapWithStateDStream(self.graph, mapped, tagged.node)

    def checkpoint(self, interval: float | None = None) -> DStream:
        """Spark's DStream.checkpoint: state here is always kept in its stores, so this
        only returns the stream."""
        return self

    # -- outputs ---------------------------------------------------------------------
    def pprint(self, num: int = 10) -> None:
        self._derive(sinks.Pprint(num))

    def collect(self) -> sinks.Collected:
        """Keep every batch's records in memory (tests, notebooks): `.batches`."""
        target = sinks.Collected()
        self._derive(sinks.Collect(target))
        return target

    def foreach_batch(self, fn: Callable[..., Any], retries: int = 3, backoff: float = 1.0) -> None:
        """Call `fn(records)` or `fn(time_seconds, records)` with each batch. When fn
        raises (any exception), it is called again up to `retries` times, `backoff`
        seconds later, doubling up to 30 s, before its error counts (a worker then treats
        the batch as poison, see README "Poison records")."""
        op = sinks.ForeachBatch(fn, retries, backoff)
        op.name = operator_name(self._derive(op).node)

    def to(self, topic: str, key_serde: str = "auto", value_serde: str = "auto") -> None:
        """Write each batch to `topic`: pairs as key and value, anything else as the value."""
        from kstream.serde import serializer

        serializer(key_serde, "key_serde")
        serializer(value_serde, "value_serde")
        self._derive(sinks.To(topic, key_serde, value_serde))


class MapWithStateDStream(DStream):
    """The mapped records of map_with_state, and its state snapshots."""

    def __init__(self, graph: GraphBuilder, node: Node, state_node: Node):
        super().__init__(graph, node)
        self._state_node = state_node

    def state_snapshots(self) -> DStream:
        """Every (key, state) after each batch (Spark's stateSnapshots)."""
        op: state_ops.MapWithState = self._state_node.op  # type: ignore[assignment]
        self._state_node.op = op.with_snapshots()
        pick = state_ops.Pick(state_ops.SNAPSHOT)
        partitioning = self._state_node.partitioning  # (key, state) of the keys it read
        return DStream(self.graph, self.graph.add(pick, (self._state_node,), partitioning))

    stateSnapshots = state_snapshots


def _read_as_they_are(streams: list[DStream], partitions: int | None, op: Operator) -> bool:
    """Whether `op`, needing each key's records together, reads `streams` without a
    shuffle: each is spread by key as it asks (`DStream._reads_by_key`) and, when
    several, by one and the same shuffle, so that a key's records of all of them are
    in one task. Streams out of different shuffles are not, even with as many
    partitions: their partitions are tasks of their own, which the consumer group
    may give to different workers."""
    keeps_state = isinstance(op, Stateful)
    first = streams[0].node.partitioning
    if first is None or not streams[0]._reads_by_key(partitions, keeps_state):
        return False
    return all(first.co_located(s.node.partitioning) for s in streams[1:])


add_spark_names(DStream)
