"""The commit protocol of a step (docs/design.md §5), in its order, for both guarantees:

  begin     - the step's transaction, under exactly-once (`begin`);
  write     - per batch: its dead letters and outputs, then its repartition frames and
              markers (`write`);
  finish    - the changelogs of the state it changed, then flush and commit the input
              offsets, or the transaction holding it all (kstream/delivery.py); only then
              do the local stores take the state changes (`finish`).

Every record goes through kstream.delivery.produce_retrying. An output Kafka refuses for
good is a poison record: refused at produce(), it is handled at once; refused in a
delivery report, its step failed (`abandon` keeps it in `refused`), and the redo of the
step dead-letters it instead of sending it again.
"""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from kstream.clocks import TP
from kstream.codec import Codec, unwritable
from kstream.dead_letters import DeadLetter, operator_name
from kstream.delivery import Delivery, RefusedError, produce_retrying
from kstream.graph import Node
from kstream.kafka import exchange
from kstream.observe.observer import Observer
from kstream.partitioning import partitioner
from kstream.plan import Plan
from kstream.poison import Poison
from kstream.runner import BatchResult
from kstream.serde import serializer
from kstream.stages import StageRuntime
from kstream.state.rocks import RocksStore


def commit_offsets(stages: list[StageRuntime]) -> list[TopicPartition]:
    """Per assigned partition, the lowest offset not yet in a processed batch, with what
    was processed above it (kstream/progress.py)."""
    return [
        TopicPartition(topic, p, offset, metadata=stage.progress((topic, p), offset))
        for stage in stages
        for (topic, p), offset in stage.commit_offsets().items()
    ]


class Checkpoint:
    """Writes a step's batches through the current incarnation's `delivery` and makes
    them durable. Outlives incarnations: what Kafka refused in a failed step is kept for
    its redo."""

    def __init__(
        self,
        app_id: str,
        plan: Plan,
        partitions: dict[str, int],
        codecs: dict[str, Codec],
        poison: Poison,
        observer: Observer,
    ):
        self.app_id = app_id
        self.poison = poison
        self.observer = observer
        self.dlq_topic = plan.dlq_topic
        self.delivery: Delivery | None = None
        self.codecs = codecs  # per repartition topic
        self.partitions = {x.topic: partitions[x.topic] for x in plan.exchanges}
        self.partitioners = {
            x.topic: partitioner(x.shuffle.by, partitions[x.topic]) for x in plan.exchanges
        }
        self.targets = {x.topic: x.target for x in plan.exchanges}  # errors name them
        self.serializers = {
            n: (
                serializer(n.op.key_serde, "key_serde"),
                serializer(n.op.value_serde, "value_serde"),
            )
            for s in plan.stages
            for n in s.sinks
        }
        writers = defaultdict(list)  # the operators writing each output topic
        for n in self.serializers:
            writers[n.op.topic].append(n.name)  # type: ignore[attr-defined]
        self.writers = {topic: ", ".join(names) for topic, names in writers.items()}
        # (topic, key, value) -> (error, batch) of the records Kafka refused for good in
        # delivery reports of a failed step: its redo dead-letters them instead, until a
        # step that wrote their batch to their topic (`_written`) has committed
        self.refused: dict[tuple[str, Any, Any], tuple[KafkaError, int]] = {}
        self._written: dict[str, int] = {}  # while some are: per topic, the step's last batch
        self._dirty: set[RocksStore] = set()  # stores with changes not yet committed

    def begin(self) -> None:
        """Before the step's first batch."""
        self.delivery.begin()  # type: ignore[union-attr]

    def write(self, stage: StageRuntime, t: int, tps: tuple[TP, ...], result: BatchResult) -> None:
        """A batch's dead letters and outputs, then its repartition frames and markers."""
        self._dirty.update(result.stores)
        if result.letters:  # dead letters go out with the batch's outputs (its transaction)
            self.poison.handle(result.letters, self.send_dead_letter)
        refused = []
        for node in stage.stage.sinks:
            records = result.values.get(node)
            if records:
                left_out = self._produce_outputs(node, records, t)
                self.observer.produced(node.op.topic, len(records) - len(left_out))
                refused += left_out
        if refused:
            self.poison.handle(refused, self.send_dead_letter)
        self.poison.tick()
        if self.refused:  # the redo of a failed step: which batches it wrote where
            for topic in [*(n.op.topic for n in stage.stage.sinks), self.dlq_topic]:
                self._written[topic] = max(t, self._written.get(topic, t))
        writer = exchange.new_writer()  # this run of the batch, in case it is redone
        for x in stage.stage.writes:
            sides = []
            for side, node in enumerate(x.sides):
                records = result.values.get(node)
                if records is not None:
                    sides.append(side)
                    self._produce_exchange(x.topic, side, records, t, writer)
            codec = self.codecs[x.topic]
            marker = exchange.encode_marker(t, tps, tuple(sides), writer, codec)
            producer = self.delivery.producer  # type: ignore[union-attr]
            for p in range(self.partitions[x.topic]):
                produce_retrying(producer, x.topic, marker, None, p, t, codec.headers)

    def finish(self, consumer: Consumer, stages: list[StageRuntime]) -> None:
        """Changelogs, then the step made durable with the stages' offsets; then the local
        stores follow (so they are never ahead of the changelog)."""
        delivery = self.delivery
        assert delivery is not None
        finishing = time.monotonic()
        self.write_changelogs()
        delivery.finish(consumer, commit_offsets(stages))
        self.observer.metrics.committed(time.monotonic() - finishing)
        self.observer.acknowledged()
        for store in self._dirty:
            store.commit(delivery.changelog_next.pop(store.changelog_key, None))
        self._dirty.clear()
        if self.refused:  # forget those whose batch is now committed without them
            written = self._written
            self.refused = {
                k: (e, t) for k, (e, t) in self.refused.items() if t > written.get(k[0], t - 1)
            }
            written.clear()

    def abandon(self) -> None:
        """The step will not finish: drop the delivery and the uncommitted state changes,
        keeping what its reports refused for good (outputs and dead letters only)."""
        delivery, self.delivery = self.delivery, None
        if delivery is not None:
            delivery.abandon()
            for m in delivery.refused:
                if m.topic() in self.writers or m.topic() == self.dlq_topic:
                    self.refused[m.topic(), m.key(), m.value()] = (m.error(), m.timestamp()[1])
            self._written.clear()
        self._dirty.clear()

    def write_changelogs(self) -> None:
        """The step's state changes, to each store's changelog partition."""
        for store in self._dirty:
            topic, p = store.changelog_key
            headers = store.codec.headers
            for key, value in store.changes():
                self.delivery.send_changelog(topic, p, key, value, headers)  # type: ignore[union-attr]

    def send_dead_letter(self, topic: str, letter: DeadLetter) -> None:
        """A poison record to the dead-letter topic, through the producer of the step's
        outputs: flushed with them (in their transaction) before the offsets move on. One
        that Kafka refuses whole (too large for the dead-letter topic as well) goes again
        without its key, value and own headers."""
        producer = self.delivery.producer  # type: ignore[union-attr]
        report = self.delivery.report  # type: ignore[union-attr]
        if (topic, letter.key, letter.value) not in self.refused:
            headers = letter.kafka_headers(self.app_id)
            try:
                produce_retrying(
                    producer,
                    topic,
                    letter.value,
                    letter.key,
                    timestamp=letter.timestamp,
                    headers=headers,
                    on_delivery=report,
                )
                return
            except RefusedError:
                if letter.key is None and letter.value is None:
                    raise  # nothing to leave out: the dead-letter topic refuses records
        headers = letter.kafka_headers(self.app_id, whole=False)
        produce_retrying(
            producer, topic, timestamp=letter.timestamp, headers=headers, on_delivery=report
        )

    def _produce_outputs(self, node: Node, records: list, t: int) -> list[DeadLetter]:
        """A sink's records to its topic. Returns the poison records: those Kafka refuses
        for good, now or in a failed run of the step (`refused`). A record goes straight
        to produce() (the hot path: one call per output record) unless that raises or the
        step is the redo of a failed one; then `_produce_one` waits for room or says
        why Kafka refuses it."""
        topic = node.op.topic  # type: ignore[attr-defined]
        kser, vser = self.serializers[node]
        produce = self.delivery.producer.produce  # type: ignore[union-attr]
        direct = not self.refused and self.delivery.report is None  # type: ignore[union-attr]
        letters = []
        for r in records:
            if type(r) is tuple and len(r) == 2:
                key, value = kser(r[0]), vser(r[1])
            else:
                key, value = None, vser(r)
            if direct:
                try:
                    produce(topic, value, key, timestamp=t)
                    continue
                except (BufferError, KafkaException):
                    pass  # not queued: the full path below
            letter = self._produce_one(topic, key, value, t)
            if letter is not None:
                letters.append(letter)
        return letters

    def _produce_one(self, topic: str, key: Any, value: Any, t: int) -> DeadLetter | None:
        """One output record, waiting for room in a full queue; a dead letter instead if
        Kafka refuses it for good, now or in the failed step this one redoes."""
        known = self.refused.get((topic, key, value)) if self.refused else None
        if known is not None:
            error = known[0]
        else:
            delivery = self.delivery
            try:
                produce_retrying(delivery.producer, topic, value, key, -1, t, None, delivery.report)  # type: ignore[union-attr]
                return None
            except RefusedError as e:
                error = e.error
        writers = self.writers[topic]
        return DeadLetter.refused(error.name(), error.str(), writers, topic, key, value, t)

    def _produce_exchange(self, topic: str, side: int, records: list, t: int, writer: int) -> None:
        """A batch's records for a repartition topic, in frames of its format; a record
        the format cannot write stops the worker, naming the operator it was for."""
        codec = self.codecs[topic]
        try:
            frames = list(
                exchange.frames(t, side, records, writer, self.partitioners[topic], codec)
            )
        except Exception as e:
            what = f"{operator_name(self.targets[topic])}: a record for {topic}"
            raise unwritable(e, codec, what) from e
        producer = self.delivery.producer  # type: ignore[union-attr]
        for p, frame in frames:
            produce_retrying(producer, topic, frame, None, p, t, codec.headers)
