"""Reading a topic up to its end: the one loop behind `kstream dlq redrive`
(kstream/redrive.py) and the test helpers that read a topic back (kstream/testing.py,
tests/integration/workers.py).

A partition's end is where its partition-EOF event says it is, not what ListOffsets
answers: the test broker's ListOffsets(latest) is wrong (docs/test-broker.md), and the
event also gives a `read_committed` reader's end (the last stable offset) for free.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from confluent_kafka import Consumer, KafkaError, Message, TopicPartition

# consume() takes up to this many records, waiting at most this long for the first
BULK = 1000
POLL_SECONDS = 0.2


class ReadError(RuntimeError):
    """The consumer reported an error other than a partition's end."""


class ToEnd:
    """Iterates over the records of one topic until every partition has been read to its
    end, then for `linger` seconds more; stops at `timeout` even if some have not (see
    `complete` and `missing`).

    The partitions are `partitions`, assigned here, or else whatever the consumer's group
    assigns it (a subscribed consumer: each one the group gives it must reach its end).
    An error raises ReadError, or with `fatal_only` only a fatal one (librdkafka retries
    the others: a long-running reader rides them out)."""

    def __init__(
        self,
        consumer: Consumer,
        timeout: float,
        partitions: list[TopicPartition] | None = None,
        linger: float = 0.0,
        fatal_only: bool = False,
    ):
        self.consumer = consumer
        self.timeout = timeout
        self.linger = linger
        self.fatal_only = fatal_only
        self.assigned: set[int] | None = None  # None: the group's assignment
        if partitions is not None:
            consumer.assign(partitions)
            self.assigned = {tp.partition for tp in partitions}
        self.ends: dict[int, int] = {}  # per partition: the offset of its first end

    def __iter__(self) -> Iterator[Message]:
        deadline = time.monotonic() + self.timeout
        reached_all = None  # when every partition had reached its end
        while True:
            if reached_all is None and self.complete:
                reached_all = time.monotonic()
            now = time.monotonic()
            if reached_all is not None and now - reached_all >= self.linger:
                return
            if now > deadline:
                return
            for m in self.consumer.consume(BULK, POLL_SECONDS):
                err = m.error()
                if err is None:
                    yield m
                elif err.code() == KafkaError._PARTITION_EOF:
                    self.ends.setdefault(m.partition(), m.offset())
                elif err.fatal() or not self.fatal_only:
                    raise ReadError(f"reading {m.topic()}: {err.str()}")

    def _partitions(self) -> set[int] | None:
        """The partitions to read to their end; None while a group assigns none."""
        if self.assigned is not None:
            return self.assigned
        return {tp.partition for tp in self.consumer.assignment()} or None

    @property
    def complete(self) -> bool:
        """Whether every partition has been read to its end."""
        partitions = self._partitions()
        return partitions is not None and partitions <= self.ends.keys()

    @property
    def missing(self) -> list[int]:
        """The partitions not read to their end (yet), in order."""
        return sorted((self._partitions() or set()) - self.ends.keys())
