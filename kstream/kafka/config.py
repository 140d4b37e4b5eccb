"""librdkafka settings for kstream's clients; the user's -X settings override them."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

KAFKA_LOG = logging.getLogger("kstream.kafka")


def consumer_config(
    brokers: str, group_id: str, group_instance_id: str | None, overrides: dict[str, Any]
) -> dict[str, Any]:
    config: dict[str, Any] = {
        "bootstrap.servers": brokers,
        "group.id": group_id,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        # End-of-partition events tell "caught up" without ListOffsets (see BROKER.md).
        "enable.partition.eof": True,
        "partition.assignment.strategy": "cooperative-sticky",
        "isolation.level": "read_committed",
        "session.timeout.ms": 10000,
        "heartbeat.interval.ms": 2000,
        "fetch.queue.backoff.ms": 10,
        # An idle partition answers a fetch after this long: it bounds how late the
        # end-of-partition event (and so the closing of the last batch) can come.
        "fetch.wait.max.ms": 100,
        "logger": KAFKA_LOG,
    }
    if group_instance_id:
        config["group.instance.id"] = group_instance_id
    config.update(overrides)
    return config


def producer_config(
    brokers: str, on_error: Callable[[Any, Any], None], overrides: dict[str, Any]
) -> dict[str, Any]:
    config: dict[str, Any] = {
        "bootstrap.servers": brokers,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "batch.num.messages": 10000,
        "queue.buffering.max.messages": 1_000_000,
        # Java's partitioner (murmur2 of the key bytes; null keys spread at random), not
        # librdkafka's CRC32: a keyed output lands where a JVM producer puts that key.
        "partitioner": "murmur2_random",
        # Only failures call back: no Python call per record on the hot path.
        "delivery.report.only.error": True,
        "on_delivery": on_error,
        "logger": KAFKA_LOG,
    }
    consumer_only = {
        "group.id",
        "group.instance.id",
        "session.timeout.ms",
        "heartbeat.interval.ms",
        "fetch.queue.backoff.ms",
        "auto.offset.reset",
        "isolation.level",
        "max.poll.interval.ms",
        "partition.assignment.strategy",
        "enable.partition.eof",
        "fetch.wait.max.ms",
        "fetch.min.bytes",
    }
    config.update({k: v for k, v in overrides.items() if k not in consumer_only})
    return config


def admin_config(brokers: str, overrides: dict[str, Any]) -> dict[str, Any]:
    shared = ("security.protocol", "sasl.", "ssl.", "client.id", "socket.")
    config: dict[str, Any] = {"bootstrap.servers": brokers, "logger": KAFKA_LOG}
    config.update({k: v for k, v in overrides.items() if k.startswith(shared)})
    return config
