"""A worker whose Kafka clients are stand-ins: it runs batches of real `Message`s, and
what it would produce is recorded (FakeProducer.sent)."""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError, KafkaException, Message

from kstream.codec import Msgpack
from kstream.kafka import exchange
from kstream.worker import Worker

TOO_LARGE = KafkaError(
    KafkaError.MSG_SIZE_TOO_LARGE, "Unable to produce message: Broker: Message size too large"
)
CODEC = Msgpack()  # an app's default internal format


class FakeProducer:
    """Records what it is given. `max_bytes` (per topic) and `errors` (per topic) make it
    refuse records at produce(), as librdkafka refuses one larger than message.max.bytes."""

    def __init__(
        self,
        full_once: bool = False,
        max_bytes: dict[str, int] | None = None,
        errors: dict[str, KafkaError] | None = None,
    ):
        self.sent: list[dict] = []
        self.full_once = full_once
        self.max_bytes = max_bytes or {}
        self.errors = errors or {}
        self.polls = 0

    def produce(
        self,
        topic,
        value=None,
        key=None,
        partition=-1,
        timestamp=0,
        headers=None,
        on_delivery=None,
    ):
        if self.full_once:
            self.full_once = False
            raise BufferError("queue full")
        if topic in self.errors:
            raise KafkaException(self.errors[topic])
        size = len(key or b"") + len(value or b"") + sum(len(k) + len(v) for k, v in headers or ())
        if size > self.max_bytes.get(topic, size):
            raise KafkaException(TOO_LARGE)
        self.sent.append(
            dict(
                topic=topic,
                value=value,
                key=key,
                partition=partition,
                timestamp=timestamp,
                headers=headers,
                on_delivery=on_delivery,
            )
        )

    def poll(self, timeout=0):
        self.polls += 1

    def to(self, topic: str) -> list[dict]:
        return [r for r in self.sent if r["topic"] == topic]


class KafkaProducerStandIn:
    """Stands for confluent_kafka.Producer inside kstream.delivery. Its calls go to a
    shared `journal` as (role, call, detail); flush() acknowledges what was produced,
    calling back as librdkafka does (only failures, under delivery.report.only.error),
    unless `unacknowledged` still says how many records it leaves in flight. Per topic,
    `refuse_now` refuses records at produce(), as librdkafka does one above
    message.max.bytes, and `refuse` in their delivery report; `fail` (per call) raises."""

    def __init__(self, config: dict, journal: list):
        self.config = config
        self.journal = journal
        self.role = "producer"  # the test names its producers
        self.refuse: dict[str, KafkaError] = {}
        self.refuse_now: dict[str, KafkaError] = {}
        self.fail: dict[str, KafkaError] = {}
        self.unacknowledged: list[int] = []
        self.sent: list[Message] = []  # every record it took
        self.pending: list[Message] = []  # those not yet acknowledged
        self.offsets: dict[tuple[str, int], int] = {}
        self._callbacks: list = []

    def produce(
        self, topic, value=None, key=None, partition=-1, timestamp=0, headers=None, on_delivery=None
    ):
        if topic in self.refuse_now:
            raise KafkaException(self.refuse_now[topic])
        self.journal.append((self.role, "produce", topic))
        p = max(partition, 0)
        offset = self.offsets.get((topic, p), 0)
        self.offsets[(topic, p)] = offset + 1
        m = Message(topic=topic, partition=p, offset=offset, key=key, value=value, headers=headers)
        self.sent.append(m)
        self.pending.append(m)
        self._callbacks.append(on_delivery or self.config.get("on_delivery"))

    def flush(self, timeout=None) -> int:
        self.journal.append((self.role, "flush", None))
        if self.unacknowledged:
            return self.unacknowledged.pop(0)
        only_errors = self.config.get("delivery.report.only.error", False)
        for m, report in zip(self.pending, self._callbacks, strict=True):
            error = self.refuse.get(m.topic())
            if report is None:  # no callback: exactly-once learns of it at the commit
                continue
            if error is not None:
                m = Message(topic=m.topic(), key=m.key(), value=m.value(), error=error)
                report(error, m)
            elif not only_errors:
                report(None, m)
        self.pending.clear()
        self._callbacks.clear()
        return 0

    def poll(self, timeout=None) -> int:
        self.journal.append((self.role, "poll", None))
        return 0

    def purge(self) -> None:
        self.journal.append((self.role, "purge", None))
        self.pending.clear()
        self._callbacks.clear()

    def _call(self, name: str, detail=None) -> None:
        self.journal.append((self.role, name, detail))
        if name in self.fail:
            raise KafkaException(self.fail[name])

    def init_transactions(self, timeout=None):
        self._call("init_transactions")

    def begin_transaction(self):
        self._call("begin_transaction")

    def send_offsets_to_transaction(self, offsets, metadata, timeout=None):
        self._call(
            "send_offsets_to_transaction", [(o.topic, o.partition, o.offset) for o in offsets]
        )

    def commit_transaction(self, timeout=None):
        self._call("commit_transaction")

    def abort_transaction(self, timeout=None):
        self.purge()
        self._call("abort_transaction")


class OfflineDelivery:
    """The worker's delivery without Kafka: what a failed step's delivery reports refused."""

    report = None

    def __init__(self, producer: FakeProducer | None = None, refused: list[Message] | None = None):
        self.producer = producer or FakeProducer()
        self.refused = refused or []

    def abandon(self) -> None:
        pass


class FakeConsumer:
    """A group member that is given no partitions."""

    def __init__(self, config):
        self.config = config

    def subscribe(self, topics, **callbacks):
        self.topics = topics

    def assignment(self):
        return []


class LoopEnded(Exception):
    """Ends a worker's loop in a test (RestartingConsumer)."""


class RestartingConsumer(FakeConsumer):
    """Fails the worker's first step as a broker that went away does (a KafkaException:
    the worker drops the step and restarts, keeping this member), then ends its loop
    (LoopEnded)."""

    consumed = 0

    def consume(self, num_messages, timeout):
        self.consumed += 1
        if self.consumed == 1:
            raise KafkaException(KafkaError(KafkaError._TRANSPORT, "broker went away"))
        raise LoopEnded


def restart_once(w: Worker) -> None:
    """Run the loop of a worker made with RestartingConsumer: one restart, then the end
    (after the restart's back-off, one second)."""
    with pytest.raises(LoopEnded):
        w.loop()
    assert w.restarts == 1


class FakeAdmin:
    def __init__(self, known: dict[str, int]):
        self.known = known
        self.created: dict[str, int] = {}

    def __call__(self, brokers, kafka):  # the worker's admin_factory
        return self

    def partitions(self):
        return dict(self.known)

    def require(self, topics, role, known, remedy=""):
        assert all(t in known for t in topics)

    def ensure(self, wanted, known, replication, config):
        self.created.update(wanted)


def offline_worker(
    app, known: dict[str, int], producer=None, delivery_factory=None, consumer_factory=FakeConsumer
) -> Worker:
    """A prepared and connected worker whose Kafka clients are stand-ins."""
    producer = producer or FakeProducer()
    w = Worker(
        app,
        brokers="127.0.0.1:1",
        consumer_factory=consumer_factory,
        delivery_factory=delivery_factory or (lambda *args, **kwargs: OfflineDelivery(producer)),
        admin_factory=FakeAdmin(known),
    )
    w.prepare()
    w.connect()
    return w


def msg(topic, p, offset, value, key=None, ts=None, headers=None) -> Message:
    return Message(
        topic=topic,
        partition=p,
        offset=offset,
        key=key,
        value=value,
        headers=headers,
        timestamp=(1, 9_000 + offset if ts is None else ts),
    )


def frame_msg(topic, p, offset, t, records, writer) -> Message:
    """A frame of a repartition topic, as a worker writes it."""
    value = exchange.encode(t, 0, records, writer, CODEC)
    return msg(topic, p, offset, value, ts=t, headers=CODEC.headers)


def marker_msg(topic, p, offset, t, tasks, writer) -> Message:
    """A batch marker of a repartition topic (side 0 wrote), as a worker writes it."""
    value = exchange.encode_marker(t, tasks, (0,), writer, CODEC)
    return msg(topic, p, offset, value, ts=t, headers=CODEC.headers)


def unframe(value: bytes) -> tuple:
    """(batch, side, records, writer) of a frame in the default format."""
    return exchange.decode(value, CODEC)


def feed(w: Worker, stage_index: int, msgs: list[Message]) -> None:
    stage = w.stages[stage_index]
    tps = sorted({(m.topic(), m.partition()) for m in msgs})
    stage.assign(tps)
    for topic in sorted({m.topic() for m in msgs}):
        stage.ingest(topic, [m for m in msgs if m.topic() == topic], 20_000)
