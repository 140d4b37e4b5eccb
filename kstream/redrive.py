"""`kstream dlq redrive`: put the dead letters of source records back on their topics.

It reads `<app_id>-dlq` from where the consumer group `<app_id>-dlq-redrive` left off (the
beginning, the first time) to its end, found by partition-EOF events (ListOffsets cannot be
trusted on every broker, see docs/test-broker.md). Each record that came from one of the app's
source topics is re-published to that topic and partition with its original key, value and
timestamp, and its own headers (the `kstream.error.*` ones stripped). Once the producer is
flushed, the group's position is committed: a second redrive re-publishes only what was
dead-lettered since. Records from repartition topics (intermediate records of a stage after
a shuffle, or late session records) cannot be fed back into the pipeline where they failed:
they are counted as skipped, as are records of topics the app does not read (any more).

A re-published record has its old timestamp: the worker takes it in as a late record
(`late="join"`, the default, puts it in the oldest open batch; `late="drop"` drops it).
Delivery is at least once: a redrive that dies between the flush and the commit
re-publishes those records again next time.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition

from kstream.dead_letters import HEADER, dlq_topic
from kstream.kafka.admin import Admin
from kstream.kafka.config import consumer_config, producer_config
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
    admin = Admin(brokers, kafka)
    known = admin.partitions()
    if topic not in known:
        yield f"no dead-letter topic {topic}: nothing to redrive"
        return
    sources = set(compile_plan(app).source_topics())
    config = consumer_config(brokers, redrive_group(app.app_id), None, kafka)
    consumer = Consumer(config)
    errors: list[str] = []
    producer = None
    if not dry_run:
        producer = Producer(
            producer_config(
                brokers, lambda err, msg: errors.append(f"{msg.topic()}: {err.str()}"), kafka
            )
        )
    try:
        partitions = [TopicPartition(topic, p) for p in range(known[topic])]
        start = consumer.committed(partitions, timeout=30)
        consumer.assign(  # from the committed position, else from the beginning
            [
                TopicPartition(
                    topic, tp.partition, tp.offset if tp.offset >= 0 else OFFSET_BEGINNING
                )
                for tp in start
            ]
        )
        reading = {tp.partition for tp in partitions}
        positions: dict[int, int] = {}
        published: Counter[str] = Counter()
        skipped: Counter[str] = Counter()
        deadline = time.monotonic() + timeout
        while reading:
            if time.monotonic() > deadline:
                raise RedriveError(
                    f"did not reach the end of {topic} partition(s) "
                    f"{', '.join(map(str, sorted(reading)))} within {timeout:g}s; "
                    "nothing committed"
                )
            for m in consumer.consume(500, 0.5):
                err = m.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        reading.discard(m.partition())
                        continue
                    if err.fatal():
                        raise RedriveError(f"reading {topic}: {err.str()}")
                    continue
                positions[m.partition()] = m.offset() + 1
                headers = dict(m.headers() or ())
                source = _text(headers, "topic")
                where = f"{topic}[{m.partition()}]@{m.offset()}"
                if source not in sources:
                    skipped[source or "(no kstream.error.topic header)"] += 1
                    if dry_run:
                        yield f"would skip {where}: from {source}, not a source topic of the app"
                    continue
                partition = int(_text(headers, "partition") or -1)
                if partition >= known.get(source, 0):
                    partition = -1
                stamp = _text(headers, "timestamp")
                timestamp = int(stamp) if stamp else m.timestamp()[1]
                own = [(k, v) for k, v in m.headers() or () if not k.startswith(HEADER)]
                published[source] += 1
                if dry_run:
                    yield (
                        f"would re-publish {where} to {source}[{partition}] "
                        f"(from offset {_text(headers, 'offset')}, "
                        f"{_text(headers, 'reason')}: {_text(headers, 'type')}: "
                        f"{_text(headers, 'message')})"
                    )
                    continue
                assert producer is not None
                while True:
                    try:
                        producer.produce(
                            source,
                            m.value(),
                            m.key(),
                            partition,
                            timestamp=timestamp,
                            headers=own or None,
                        )
                        break
                    except BufferError:
                        producer.poll(0.05)
        if producer is not None:
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
        verb = "would re-publish" if dry_run else "re-published"
        for name, n in sorted(published.items()):
            yield f"{verb} {n} record(s) to {name}"
        for name, n in sorted(skipped.items()):
            internal = parse_internal(app.app_id, name)
            kind = f"a {internal[1]} topic" if internal else "not a source"
            yield f"skipped {n} record(s) from {name} ({kind}: cannot be re-published)"
        if not published and not skipped:
            yield f"nothing to redrive: no new records on {topic}"
    finally:
        consumer.close()
