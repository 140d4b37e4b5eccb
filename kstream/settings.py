"""App settings: one validated place, so a bad value fails at start naming the setting."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from kstream.codec import SERDES
from kstream.errors import ConfigError

CHOICES = {
    "time": ("event", "processing"),
    "late": ("join", "drop"),
    "guarantee": ("at-least-once", "exactly-once"),
    "on_error": ("dlq", "skip", "fail"),
    "internal_serde": SERDES,
}


@dataclass
class Settings:
    brokers: str | None = None
    state_dir: str = "./state"
    # How far behind the newest timestamp seen (and the wall clock, once caught up) a
    # batch closes: records that arrive within this delay still join their own batch.
    allowed_lateness: float = 0.5
    time: str = "event"  # event: Kafka record timestamps; processing: arrival clock
    late: str = "join"  # a record for a closed batch joins the oldest open one, or is dropped
    guarantee: str = "at-least-once"
    # A poison record (it cannot be deserialized, or a user function raises on it): sent
    # to the dead-letter topic <app_id>-dlq, logged and skipped, or fatal (kstream/poison.py)
    on_error: str = "dlq"
    repartition_partitions: int | None = None  # default: the most partitions of any source
    replication_factor: int = -1  # internal topics; -1 = the broker's default
    # Create missing output topics at start (sized as the internal topics, with their
    # replication) instead of refusing to start: convenient in development; in production
    # output topics are usually made, and sized, on purpose.
    create_topics: bool = False
    max_empty_batches: int = 60  # longer runs of empty batches (idle gaps) are skipped
    state_memory_mb: int = 64  # RocksDB memory of all a worker's stores (memtables, cache)
    kafka: dict[str, Any] = field(default_factory=dict)  # librdkafka settings, passed through
    group_instance_id: str | None = None  # static membership, e.g. the pod name
    # The format of repartition topics, changelogs and stores (kstream/codec.py):
    # "msgpack" reads no code from a topic; "pickle" carries any value, and anyone who can
    # write the app's internal topics can run code in its workers. Operators may override.
    internal_serde: str = "msgpack"

    @classmethod
    def from_kwargs(cls, **kwargs: Any) -> Settings:
        known = {f.name for f in dataclasses.fields(cls)}
        for name in kwargs:
            if name not in known:
                raise ConfigError(f"unknown setting {name!r}; known: {', '.join(sorted(known))}")
        settings = cls(**kwargs)
        settings.validate()
        return settings

    def validate(self) -> None:
        for name, allowed in CHOICES.items():
            value = getattr(self, name)
            if value not in allowed:
                raise ConfigError(f"{name}={value!r}: choose one of {', '.join(allowed)}")
        if not isinstance(self.allowed_lateness, int | float) or self.allowed_lateness < 0:
            raise ConfigError(f"allowed_lateness={self.allowed_lateness!r}: must be >= 0 seconds")
        rp = self.repartition_partitions
        if rp is not None and (not isinstance(rp, int) or rp < 1):
            raise ConfigError(f"repartition_partitions={rp!r}: must be a whole number >= 1")
        if not isinstance(self.create_topics, bool):
            raise ConfigError(f"create_topics={self.create_topics!r}: must be True or False")
        if not isinstance(self.state_memory_mb, int) or self.state_memory_mb < 4:
            raise ConfigError(f"state_memory_mb={self.state_memory_mb!r}: must be >= 4")
        if not isinstance(self.max_empty_batches, int) or self.max_empty_batches < 1:
            raise ConfigError(f"max_empty_batches={self.max_empty_batches!r}: must be >= 1")


def interval_ms(seconds: float, setting: str) -> int:
    """A duration in whole milliseconds, or a ConfigError naming the setting."""
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds <= 0:
        raise ConfigError(f"{setting}={seconds!r}: must be a positive number of seconds")
    ms = round(seconds * 1000)
    if abs(ms - seconds * 1000) > 1e-6 or ms == 0:
        raise ConfigError(f"{setting}={seconds!r}: must be a whole number of milliseconds")
    return ms
