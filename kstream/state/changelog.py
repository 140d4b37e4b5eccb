"""Changelog topics: where a store's changes go, and how a store is rebuilt from them."""

from __future__ import annotations

import logging
import time
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from kstream.kafka.config import KAFKA_LOG
from kstream.names import internal_topic

log = logging.getLogger(__name__)

TP = tuple[str, int]
Records = list[tuple[bytes, bytes | None]]


def changelog_topic(app_id: str, store: str) -> str:
    return internal_topic(app_id, store, "changelog")


class ChangelogReader:
    """Reads changelog partitions from given offsets to their ends, a slice at a time, so
    a long restore never holds up the batch loop (nor one partition's restore another's).

    The end of a partition is found by its end-of-partition event, not ListOffsets (see
    BROKER.md). One consumer serves every partition being restored."""

    def __init__(self, brokers: str, overrides: dict[str, Any]):
        self.config = {
            "bootstrap.servers": brokers,
            "group.id": "kstream-restore",  # assigned, never subscribed: commits nothing
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "isolation.level": "read_committed",
            "fetch.queue.backoff.ms": 10,
            # The end of a short changelog shows as an empty fetch: let it come soon,
            # and keep a long changelog from queueing far ahead of the others.
            "fetch.wait.max.ms": 100,
            "queued.min.messages": 20000,
            "logger": KAFKA_LOG,
            **{k: v for k, v in overrides.items() if k.startswith(("security.", "sasl.", "ssl."))},
        }
        self.consumer: Consumer | None = None
        self.next: dict[TP, int] = {}  # partitions being read -> the offset after the last

    def add(self, starts: dict[TP, int]) -> None:
        if not starts:
            return
        if self.consumer is None:
            self.consumer = Consumer(self.config)
        self.next.update(starts)
        self.consumer.incremental_assign([TopicPartition(t, p, o) for (t, p), o in starts.items()])

    def remove(self, tps: list[TP]) -> None:
        gone = [tp for tp in tps if self.next.pop(tp, None) is not None]
        if gone and self.consumer is not None:
            self.consumer.incremental_unassign([TopicPartition(t, p) for t, p in gone])

    def read(self, budget: float) -> tuple[dict[TP, Records], dict[TP, int]]:
        """Records read within about `budget` seconds, per partition (`next` says how far
        each partition is read), and the partitions read to their end, with the offset
        after their last record; those leave this reader."""
        records: dict[TP, Records] = {}
        ended: dict[TP, int] = {}
        if self.consumer is None or not self.next:
            return records, ended
        deadline = time.monotonic() + budget
        while self.next and time.monotonic() < deadline:
            for m in self.consumer.consume(10000, min(0.1, budget)):
                tp = (m.topic(), m.partition())
                if tp not in self.next:
                    continue  # removed while its records were on the way
                err = m.error()
                if err is None:
                    records.setdefault(tp, []).append((m.key(), m.value()))
                    self.next[tp] = m.offset() + 1
                elif err.code() == KafkaError._PARTITION_EOF:
                    ended[tp] = max(self.next[tp], m.offset())
                    self.remove([tp])
                else:
                    raise KafkaException(err)
        return records, ended

    def close(self) -> None:
        if self.consumer is not None:
            self.consumer.close()
            self.consumer = None
        self.next.clear()


def read_changelogs(
    brokers: str,
    overrides: dict[str, Any],
    starts: dict[TP, int],
    timeout: float = 600.0,
) -> dict[TP, tuple[Records, int]]:
    """Every record of some changelog partitions from their start offsets to their ends;
    per partition the records and the next offset (a whole restore in one call)."""
    out: dict[TP, tuple[Records, int]] = {tp: ([], start) for tp, start in starts.items()}
    reader = ChangelogReader(brokers, overrides)
    deadline = time.monotonic() + timeout
    try:
        reader.add(starts)
        left = set(starts)
        while left:
            if time.monotonic() > deadline:
                raise TimeoutError(f"restoring {sorted(left)} took over {timeout:.0f}s")
            records, ended = reader.read(1.0)
            for tp, recs in records.items():
                out[tp][0].extend(recs)
            for tp, next_offset in ended.items():
                out[tp] = (out[tp][0], next_offset)
                left.discard(tp)
        return out
    finally:
        reader.close()
