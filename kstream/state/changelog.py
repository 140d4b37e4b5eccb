"""Changelog topics: where a store's changes go, and how a store is rebuilt from them."""

from __future__ import annotations

import logging
import time
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from kstream.kafka.config import KAFKA_LOG

log = logging.getLogger(__name__)


def changelog_topic(app_id: str, store: str) -> str:
    return f"{app_id}-{store}-changelog"


def read_changelogs(
    brokers: str,
    overrides: dict[str, Any],
    starts: dict[tuple[str, int], int],
    timeout: float = 600.0,
) -> dict[tuple[str, int], tuple[list[tuple[bytes, bytes | None]], int]]:
    """Every record of some changelog partitions from their start offsets to their ends
    (found by end-of-partition events, not ListOffsets: see BROKER.md), read by one
    consumer; per partition the records and the next offset."""
    config = {
        "bootstrap.servers": brokers,
        "group.id": "kstream-restore",  # assigned, never subscribed: commits nothing
        "enable.auto.commit": False,
        "enable.partition.eof": True,
        "isolation.level": "read_committed",
        "fetch.queue.backoff.ms": 10,
        "logger": KAFKA_LOG,
        **{k: v for k, v in overrides.items() if k.startswith(("security.", "sasl.", "ssl."))},
    }
    out = {tp: ([], start) for tp, start in starts.items()}
    if not starts:
        return out
    consumer = Consumer(config)
    left = set(starts)
    deadline = time.monotonic() + timeout
    try:
        consumer.assign([TopicPartition(t, p, start) for (t, p), start in starts.items()])
        while left:
            if time.monotonic() > deadline:
                raise TimeoutError(f"restoring {sorted(left)} took over {timeout:.0f}s")
            for m in consumer.consume(10000, 0.5):
                tp = (m.topic(), m.partition())
                err = m.error()
                if err is None:
                    records, _ = out[tp]
                    records.append((m.key(), m.value()))
                    out[tp] = (records, m.offset() + 1)
                elif err.code() == KafkaError._PARTITION_EOF:
                    records, next_offset = out[tp]
                    out[tp] = (records, max(next_offset, m.offset()))
                    left.discard(tp)
                else:
                    raise KafkaException(err)
    finally:
        consumer.close()
    return out
