"""A worker whose Kafka clients are stand-ins: it runs batches of real `Message`s, and
what it would produce is recorded (FakeProducer.sent)."""

from __future__ import annotations

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


def offline_worker(app, known: dict[str, int], producer=None, delivery_factory=None) -> Worker:
    """A prepared and connected worker whose Kafka clients are stand-ins."""
    producer = producer or FakeProducer()
    w = Worker(
        app,
        brokers="127.0.0.1:1",
        consumer_factory=FakeConsumer,
        delivery_factory=delivery_factory or (lambda *args, **kwargs: OfflineDelivery(producer)),
        admin_factory=FakeAdmin(known),
    )
    w.prepare()
    w._connect()
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
