"""The worker's part in its consumer group: the partitions it is given and loses.

On assign, a partition's stores are restored before it runs (paused meanwhile, restored a
slice per loop iteration), and it starts where its previous owner's commit leaves it (the
closings committed with the offset, kstream/progress.py). On revoke or loss, its open
batches are dropped (their offsets were not committed: the next owner reads them again)
and its stores closed (docs/design.md §5).
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict

from confluent_kafka import Consumer, KafkaException, TopicPartition

from kstream.clocks import TP
from kstream.observe.observer import Observer
from kstream.progress import Closings
from kstream.stages import StageRuntime
from kstream.state.tasks import TaskStores

log = logging.getLogger(__name__)


class Membership:
    """Rebalance callbacks over the worker's stages (`topic_stage`, filled in place by the
    worker) and task stores."""

    def __init__(
        self,
        topic_stage: dict[str, StageRuntime],
        stores: TaskStores,
        observer: Observer,
        stopping: threading.Event,
        cooperative: bool,
    ):
        self.topic_stage = topic_stage
        self.stores = stores
        self.observer = observer
        self.stopping = stopping
        self.cooperative = cooperative
        # assigned partitions' closings from their previous owners' commits, until the
        # partitions join their stages (kstream/progress.py)
        self.handed: dict[TP, Closings] = {}

    def _group(self, partitions: list[TopicPartition]) -> dict[StageRuntime, list[TP]]:
        by_stage: dict[StageRuntime, list[TP]] = defaultdict(list)
        for tp in partitions:
            by_stage[self.topic_stage[tp.topic]].append((tp.topic, tp.partition))
        return by_stage

    def on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Take the partitions; those whose stores need restoring stay paused, out of
        their stage, until `restore` has rebuilt them (outside this callback, a slice
        per iteration, so neither the group's poll deadline nor other tasks wait)."""
        if self.cooperative:
            consumer.incremental_assign(partitions)
        else:
            consumer.assign(partitions)
        stateful = [p for p in partitions if self.stores.has_state(p.topic)]
        if stateful:
            consumer.pause(stateful)
        self.handed.update(closings_committed(consumer, partitions))
        for stage, tps in self._group(partitions).items():
            stage.assign([tp for tp in tps if not self.stores.has_state(tp[0])], self.handed)
            self.stores.assign(tps)
        self.observer.metrics.rebalance("assign")
        self.observer.ready(True, "assigned")
        if partitions:
            log.info("assigned %s", ", ".join(f"{p.topic}[{p.partition}]" for p in partitions))

    def on_revoke(
        self, consumer: Consumer | None, partitions: list[TopicPartition], kind: str = "revoke"
    ) -> None:
        for tp in partitions:
            self.handed.pop((tp.topic, tp.partition), None)
        for stage, tps in self._group(partitions).items():
            stage.revoke(tps)
            self.stores.revoke(tps)
        self.observer.metrics.rebalance(kind)
        for tp in partitions:
            self.observer.forget(tp.topic, tp.partition)
        if partitions and not self.stopping.is_set():
            log.warning(
                "%s %s (their open batches go to the next owner)",
                "revoked" if kind == "revoke" else "lost",
                ", ".join(f"{p.topic}[{p.partition}]" for p in partitions),
            )

    def on_lost(self, consumer: Consumer | None, partitions: list[TopicPartition]) -> None:
        self.on_revoke(consumer, partitions, "lost")

    def rewind(self, consumer: Consumer) -> None:
        """Take the kept member's partitions again, from their committed offsets: out of
        librdkafka's assignment and back in without an offset (so it reads the committed
        ones), through `on_assign` into the fresh stages and stores. The group sees no
        change. Raises KafkaException if the member cannot be rewound."""
        self.handed.clear()
        partitions = [TopicPartition(tp.topic, tp.partition) for tp in consumer.assignment()]
        if not partitions:  # a member without partitions (more workers than them)
            self.observer.ready(True, "assigned (no partitions)")
            return
        if self.cooperative:
            consumer.incremental_unassign(partitions)
        self.on_assign(consumer, partitions)

    def restore(self, consumer: Consumer, budget: float) -> None:
        """Advance the restores for `budget` seconds; a task whose stores are complete
        joins its stage (and catches up there on its own) and its partition is read
        again."""
        self.observer.ready(False, f"restoring the state of {self.stores.restoring} task(s)")
        for (topic, p), through in self.stores.restore(budget).items():
            self.topic_stage[topic].assign_restored((topic, p), self.handed, through)
            consumer.resume([TopicPartition(topic, p)])
        if not self.stores.restoring:
            self.observer.ready(True, "state restored")


def closings_committed(consumer: Consumer, partitions: list[TopicPartition]) -> dict[TP, Closings]:
    """What the partitions' previous owners committed beyond their offsets (which records
    above them they processed, kstream/progress.py); on failure nothing, and those records
    are processed again."""
    if not partitions:
        return {}
    try:
        committed = consumer.committed(partitions, timeout=10)
    except KafkaException as e:
        log.warning("cannot read the committed offsets' metadata: %s", e.args[0].str())
        return {}
    out = {}
    for tp in committed:
        closings = Closings.parse(tp.metadata)
        if closings is not None:
            out[(tp.topic, tp.partition)] = closings
    return out
