"""Changelog topics: where a store's changes go, and how a store is rebuilt from them."""

from __future__ import annotations

import logging
import time
from itertools import groupby
from operator import itemgetter
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from kstream.codec import Codec, refused
from kstream.kafka.config import KAFKA_LOG
from kstream.names import internal_topic

log = logging.getLogger(__name__)

TP = tuple[str, int]
Records = list[tuple[bytes, bytes | None]]
_topic, _partition, _error = Message.topic, Message.partition, Message.error
_key, _value, _headers = Message.key, Message.value, Message.headers
_first, _second = itemgetter(0), itemgetter(1)


def changelog_topic(app_id: str, store: str) -> str:
    return internal_topic(app_id, store, "changelog")


class ChangelogReader:
    """Reads changelog partitions from given offsets to their ends, a slice at a time, so
    a long restore never holds up the batch loop (nor one partition's restore another's).

    The end of a partition is found by its end-of-partition event, not ListOffsets (see
    docs/test-broker.md). One consumer serves every partition being restored. A record not in its
    topic's format (`formats`, by its header) is not read: the restore stops with a
    FormatError. A partition's run of records in a consume is taken in C-level passes
    (its headers, keys and values), as a restore reads every record of a changelog."""

    def __init__(self, brokers: str, overrides: dict[str, Any], formats: dict[str, Codec]):
        self.formats = formats  # changelog topic -> its codec
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
            msgs = self.consumer.consume(10000, min(0.1, budget))
            tps = zip(map(_topic, msgs), map(_partition, msgs), strict=True)
            for tp, run in groupby(zip(tps, msgs, strict=True), _first):
                self._take(tp, list(map(_second, run)), records, ended)
        return records, ended

    def _take(self, tp: TP, run: list[Message], records: dict[TP, Records], ended) -> None:
        """One partition's messages of a consume, in order: records, maybe then its end
        (after which the rest of the run is not read)."""
        if tp not in self.next:
            return  # removed while its records were on the way
        event = None
        if any(map(_error, run)):
            i = next(i for i, m in enumerate(run) if m.error() is not None)
            run, event = run[:i], run[i]
        if run:
            codec = self.formats[tp[0]]
            heads = list(map(_headers, run))
            if heads.count(codec.headers) != len(heads):
                bad = next(m for m, h in zip(run, heads, strict=True) if h != codec.headers)
                raise refused(bad.headers(), codec, f"{tp[0]}[{tp[1]}]@{bad.offset()}")
            records.setdefault(tp, []).extend(zip(map(_key, run), map(_value, run), strict=True))
            self.next[tp] = run[-1].offset() + 1
        if event is not None:
            err = event.error()
            if err.code() != KafkaError._PARTITION_EOF:
                raise KafkaException(err)
            ended[tp] = max(self.next[tp], event.offset())
            self.remove([tp])

    def close(self) -> None:
        if self.consumer is not None:
            self.consumer.close()
            self.consumer = None
        self.next.clear()
