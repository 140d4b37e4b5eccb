"""Dead letters: poison records as the dead-letter topic `<app_id>-dlq` receives them
(kstream/poison.py decides which records are poison and what becomes of them).

A dead letter's headers (UTF-8 text; the record's own headers come first):

  kstream.error.reason     deserialize, function, late or produce
  kstream.error.type       the exception's class, e.g. ValueError, json.decoder.JSONDecodeError
                           (produce: Kafka's error name, e.g. MSG_SIZE_TOO_LARGE)
  kstream.error.message    the exception's message
  kstream.error.operator   where it failed: the node (as `kstream describe` numbers them)
                           and the user function, e.g. `map-2 (app.parse)`, or the source
                           and its serde, e.g. `source-1 (value_serde=json)`
  kstream.error.topic      the topic the record was read from: a source topic, or a
  kstream.error.partition  repartition topic (then the value is the intermediate record
  kstream.error.offset     as a frame of its own, in the topic's internal format, which
                           its kstream.format header names, and the key is empty); no
                           offset for a late session record (it combines a key's records);
                           produce: the output topic it was meant for, no partition, offset
  kstream.error.timestamp  the record's own timestamp (ms), also the dead letter's
  kstream.error.batch      the batch it failed in (ms, the end of its interval)
  kstream.error.app_id     the app
  kstream.error.dropped_bytes  only on a dead letter Kafka refused whole too (too large
                           for the dead-letter topic as well): it went again without its
                           key, value and own headers, which were that many bytes
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kstream.graph import Node, failed_node

HEADER = "kstream.error."
MAX_MESSAGE = 4000  # characters of an exception message kept in a header


def dlq_topic(app_id: str) -> str:
    return f"{app_id}-dlq"


def error_type(e: BaseException) -> str:
    cls = type(e)
    if cls.__module__ == "builtins":
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"


def operator_name(node: Node | None) -> str:
    """A node and its user function, e.g. `map-2 (app.parse)`."""
    if node is None:
        return "unknown operator"
    fn = getattr(node.op, "fn", None)
    qualname = getattr(fn, "__qualname__", None)
    if qualname is None:
        return node.name
    module = getattr(fn, "__module__", None)
    return f"{node.name} ({module}.{qualname})" if module else f"{node.name} ({qualname})"


def failure(e: BaseException) -> str:
    """One line: which operator raised what."""
    return one_line(f"{operator_name(failed_node(e))} raised {error_type(e)}: {e}")


def one_line(text: str) -> str:
    return " ".join(text.split())


@dataclass(slots=True)
class DeadLetter:
    """A poison record, as the dead-letter topic receives it."""

    reason: str  # deserialize, function, late or produce
    error_type: str
    message: str
    operator: str
    topic: str
    partition: int | None  # None: an output (reason produce)
    offset: int | None
    key: bytes | None
    value: bytes | None
    timestamp: int
    batch: int
    headers: list[tuple[str, Any]] | None = None  # the record's own

    @classmethod
    def of(cls, reason: str, error: BaseException, operator: str | None = None, **record):
        return cls(
            reason,
            error_type(error),
            str(error)[:MAX_MESSAGE],
            operator or operator_name(failed_node(error)),
            **record,
        )

    @classmethod
    def refused(
        cls, error_name: str, message: str, operator: str, topic: str, key: Any, value: Any, t: int
    ) -> DeadLetter:
        """An output of batch t that Kafka refused for good, for `topic`."""
        return cls("produce", error_name, message, operator, topic, None, None, key, value, t, t)

    def where(self) -> str:
        if self.partition is None:
            return self.topic
        at = "" if self.offset is None else f"@{self.offset}"
        return f"{self.topic}[{self.partition}]{at}"

    def describe(self) -> str:
        if self.reason == "deserialize":
            what = f"cannot deserialize in {self.operator}:"
        elif self.reason == "late":
            what = f"late for {self.operator}:"
        elif self.reason == "produce":
            what = f"{self.operator} could not write it to {self.topic}:"
        else:
            what = f"{self.operator} raised"
        return one_line(f"{what} {self.error_type}: {self.message}")

    def kafka_headers(self, app_id: str, whole: bool = True) -> list[tuple[str, bytes]]:
        """The headers of its dead letter; `whole=False`: of the one sent without its key,
        value and own headers, once Kafka refused it whole (too large)."""
        own = [(k, v) for k, v in self.headers or () if not k.startswith(HEADER)]
        dropped = None
        if not whole:
            dropped = len(self.key or b"") + len(self.value or b"")
            dropped += sum(len(k) + len(v or b"") for k, v in own)
            own = []
        fields = {
            "reason": self.reason,
            "type": self.error_type,
            "message": self.message,
            "operator": self.operator,
            "topic": self.topic,
            "partition": self.partition,
            "offset": self.offset,
            "timestamp": self.timestamp,
            "batch": self.batch,
            "app_id": app_id,
            "dropped_bytes": dropped,
        }
        return own + [(HEADER + k, str(v).encode()) for k, v in fields.items() if v is not None]
