"""Topic checks and creation, done before anything is read."""

from __future__ import annotations

import logging
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from kstream.errors import ConfigError
from kstream.kafka.config import admin_config

log = logging.getLogger(__name__)


class Admin:
    def __init__(self, brokers: str, overrides: dict[str, Any]):
        self.brokers = brokers
        self.client = AdminClient(admin_config(brokers, overrides))

    def partitions(self, timeout: float = 10.0) -> dict[str, int]:
        """Partition count of every topic; a ConfigError if the brokers cannot be reached."""
        try:
            meta = self.client.list_topics(timeout=timeout)
        except KafkaException as e:
            raise ConfigError(
                f"cannot reach Kafka at --brokers {self.brokers!r} within {timeout:.0f}s "
                f"({e.args[0].str() if e.args else e})"
            ) from None
        return {name: len(t.partitions) for name, t in meta.topics.items() if t.error is None}

    def require(
        self, topics: list[str], role: str, known: dict[str, int], remedy: str = "create it first"
    ) -> None:
        missing = [t for t in topics if t not in known]
        if missing:
            raise ConfigError(
                f"{role} topic {', '.join(map(repr, missing))} does not exist on "
                f"{self.brokers} ({remedy}, or check the name)"
            )

    def ensure(
        self, wanted: dict[str, int], known: dict[str, int], replication: int, config: dict
    ) -> None:
        """Create the topics that are missing; refuse existing ones of the wrong size."""
        for topic, n in wanted.items():
            if topic in known and known[topic] != n:
                raise ConfigError(
                    f"internal topic {topic!r} has {known[topic]} partitions, the pipeline "
                    f"needs {n}: run `kstream reset` for this app first"
                )
        new = [
            NewTopic(t, num_partitions=n, replication_factor=replication, config=config)
            for t, n in wanted.items()
            if t not in known
        ]
        if not new:
            return
        futures = self.client.create_topics(new, operation_timeout=30)
        for topic, future in futures.items():
            try:
                future.result(timeout=60)
                log.info("created topic %s (%d partitions)", topic, wanted[topic])
            except KafkaException as e:
                if e.args and e.args[0].name() == "TOPIC_ALREADY_EXISTS":
                    continue
                raise ConfigError(f"cannot create topic {topic!r}: {e}") from None

    def delete(self, topics: list[str]) -> list[str]:
        if not topics:
            return []
        futures = self.client.delete_topics(topics, operation_timeout=30)
        deleted = []
        for topic, future in futures.items():
            try:
                future.result(timeout=60)
                deleted.append(topic)
            except KafkaException as e:
                log.warning("could not delete %s: %s", topic, e)
        return deleted
