"""`kstream dlq redrive`: put the dead letters of source records back on their topics.

It reads `<app_id>-dlq` from where the consumer group `<app_id>-dlq-redrive` left off (the
beginning, the first time) to its end, found by partition-EOF events (kstream/kafka/reading.py:
ListOffsets cannot be trusted on every broker, see docs/test-broker.md). Each record that came
from one of the app's source topics is re-published to that topic and partition with its
original key, value and timestamp, and its own headers (the `kstream.error.*` ones stripped).
Once the producer is flushed, the group's position is committed: a second redrive
re-publishes only what was dead-lettered since. Records from repartition topics
(intermediate records of a stage after a shuffle, or late session records) cannot be fed
back into the pipeline where they failed: they are counted as skipped, as are records of
topics the app does not read (any more).

A re-published record has its old timestamp: the worker takes it in as a late record
(`late="join"`, the default, puts it in the oldest open batch; `late="drop"` drops it).
Delivery is at least once: a redrive that dies between the flush and the commit
re-publishes those records again next time.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, Message, Producer, TopicPartition

from kstream.dead_letters import HEADER, dlq_topic
from kstream.delivery import SendFailedError, produce_retrying
from kstream.kafka.admin import Admin
from kstream.kafka.config import consumer_config, producer_config
from kstream.kafka.reading import ReadError, ToEnd
from kstream.names import parse_internal
from kstream.plan import compile_plan

if TYPE_CHECKING:
    from kstream.app import App


def redrive_group(app_id: str) -> str:
    return f"{app_id}-dlq-redrive"


class RedriveError(RuntimeError):
    """The redrive could not finish: what was re-published is not committed."""


def _text(headers: dict[str, bytes | None], name: str) -> str | None:
    raw = headers.get(HEADER + name)
    return None if raw is None else raw.decode("utf-8", "replace")


@dataclass
class Letter:
    """A dead letter and where it goes back to (its source topic, or None: not a source)."""

    message: Message
    source: str | None
    partition: int  # -1: let the producer choose (the source has fewer partitions now)
    timestamp: int
    headers: list[tuple[str, bytes]]  # its own, the kstream.error.* ones stripped

    @property
    def where(self) -> str:
        m = self.message
        return f"{m.topic()}[{m.partition()}]@{m.offset()}"

    def describe(self) -> str:
        h = dict(self.message.headers() or ())
        return (
            f"from offset {_text(h, 'offset')}, {_text(h, 'reason')}: {_text(h, 'type')}: "
            f"{_text(h, 'message')}"
        )


def _letter(m: Message, sources: set[str], known: dict[str, int]) -> Letter:
    headers = dict(m.headers() or ())
    source = _text(headers, "topic")
    partition = int(_text(headers, "partition") or -1)
    if source not in sources or partition >= known.get(source, 0):
        partition = -1
    stamp = _text(headers, "timestamp")
    own = [(k, v) for k, v in m.headers() or () if not k.startswith(HEADER)]
    return Letter(
        m,
        source if source in sources else None,
        partition,
        int(stamp) if stamp else m.timestamp()[1],
        own,
    )


def _read_to_end(consumer: Consumer, topic: str, partitions: int, timeout: float):
    """The dead-letter topic's records from the group's committed position (else the
    beginning) to each partition's end; RedriveError past `timeout`."""
    tps = [TopicPartition(topic, p) for p in range(partitions)]
    start = [
        TopicPartition(topic, tp.partition, tp.offset if tp.offset >= 0 else OFFSET_BEGINNING)
        for tp in consumer.committed(tps, timeout=30)
    ]
    reader = ToEnd(consumer, timeout, start, fatal_only=True)
    try:
        yield from reader
    except ReadError as e:
        raise RedriveError(str(e)) from e
    if not reader.complete:
        raise RedriveError(
            f"did not reach the end of {topic} partition(s) "
            f"{', '.join(map(str, reader.missing))} within {timeout:g}s; nothing committed"
        )


def redrive(
    app: App,
    brokers: str | None,
    kafka: dict[str, Any],
    dry_run: bool = False,
    timeout: float = 60.0,
) -> Iterator[str]:
    """Re-publish the app's dead-lettered source records; yields the lines to print."""
    brokers = brokers or app.settings.brokers or "localhost:9092"
    topic = dlq_topic(app.app_id)
    known = Admin(brokers, kafka).partitions()
    if topic not in known:
        yield f"no dead-letter topic {topic}: nothing to redrive"
        return
    sources = set(compile_plan(app).source_topics())
    consumer = Consumer(consumer_config(brokers, redrive_group(app.app_id), None, kafka))
    errors: list[str] = []
    on_error = lambda err, msg: errors.append(f"{msg.topic()}: {err.str()}")  # noqa: E731
    producer = None if dry_run else Producer(producer_config(brokers, on_error, kafka))
    positions: dict[int, int] = {}
    published: Counter[str] = Counter()
    skipped: Counter[str] = Counter()
    try:
        for m in _read_to_end(consumer, topic, known[topic], timeout):
            positions[m.partition()] = m.offset() + 1
            letter = _letter(m, sources, known)
            if letter.source is None:
                source = _text(dict(m.headers() or ()), "topic")
                skipped[source or "(no kstream.error.topic header)"] += 1
                if dry_run:
                    yield f"would skip {letter.where}: from {source}, not a source topic of the app"
                continue
            published[letter.source] += 1
            if producer is None:
                yield (
                    f"would re-publish {letter.where} to {letter.source}[{letter.partition}] "
                    f"({letter.describe()})"
                )
                continue
            _publish(producer, letter)
        if producer is not None:
            _commit(consumer, producer, topic, positions, errors, timeout)
        yield from _summary(app.app_id, topic, published, skipped, dry_run)
    finally:
        consumer.close()


def _publish(producer: Producer, letter: Letter) -> None:
    m = letter.message
    try:
        produce_retrying(
            producer,
            letter.source,  # type: ignore[arg-type]
            m.value(),
            m.key(),
            letter.partition,
            letter.timestamp,
            letter.headers or None,
        )
    except SendFailedError as e:
        raise RedriveError(f"{e}; nothing committed") from e


def _commit(
    consumer: Consumer,
    producer: Producer,
    topic: str,
    positions: dict[int, int],
    errors: list[str],
    timeout: float,
) -> None:
    """Once every re-published record is acknowledged, the group moves past them."""
    left = producer.flush(timeout)
    if left or errors:
        raise RedriveError(
            f"{left + len(errors)} record(s) not re-published "
            f"({errors[0] if errors else 'not acknowledged in time'}); nothing committed"
        )
    if positions:
        consumer.commit(
            offsets=[TopicPartition(topic, p, o) for p, o in sorted(positions.items())],
            asynchronous=False,
        )


def _summary(
    app_id: str, topic: str, published: Counter[str], skipped: Counter[str], dry_run: bool
) -> Iterator[str]:
    verb = "would re-publish" if dry_run else "re-published"
    for name, n in sorted(published.items()):
        yield f"{verb} {n} record(s) to {name}"
    for name, n in sorted(skipped.items()):
        internal = parse_internal(app_id, name)
        kind = f"a {internal[1]} topic" if internal else "not a source"
        yield f"skipped {n} record(s) from {name} ({kind}: cannot be re-published)"
    if not published and not skipped:
        yield f"nothing to redrive: no new records on {topic}"
