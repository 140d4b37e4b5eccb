"""Outputs Kafka refuses for good, on the real broker, under both guarantees: dead-lettered
(without their payload when the dead-letter topic refuses them too), the rest of their
batches written and committed, the worker never stuck restarting.

Tansu enforces no size limit (neither the broker's message.max.bytes nor a topic's
max.message.bytes: a 3 MB record and a 5 kB one to a topic limited to 1 kB are both taken).
So the first test relies on the client side: librdkafka refuses a record above the
producer's own message.max.bytes at produce(), MSG_SIZE_TOO_LARGE, the error the broker
would give. A refusal by the broker itself comes later, in a delivery report (and, in a
transaction, by failing it): the second test injects one at the producer, as librdkafka
would report it, and the worker takes the path it takes on Kafka."""

from __future__ import annotations

import logging
import time

import pytest
from confluent_kafka import KafkaError, KafkaException, Message, Producer

import kstream
from kstream.delivery import open_delivery
from kstream.testing import FAST_CLIENT, produce
from kstream.worker import Worker
from tests.integration.faults import committed
from tests.integration.workers import read_to_end

LIMIT = 20_000  # bytes: the largest record the producer takes
SIZES = (50_000, 60_000, 70_000)  # outputs above it


def render(line: str):
    """`size N` becomes a value of N bytes, anything else its upper case."""
    word, _, n = line.partition(" ")
    return (word, "x" * int(n)) if word == "size" else (word, line.upper())


def bloating_app(app_id, bootstrap, source, out, tmp_path, guarantee, kafka) -> kstream.App:
    app = kstream.App(
        app_id,
        batch_interval=1.0,
        brokers=bootstrap,
        kafka={**FAST_CLIENT, **kafka},
        guarantee=guarantee,
        state_dir=str(tmp_path),
    )
    app.stream(source).map(render).to(out)
    return app


def lines_with_large_outputs(bootstrap: str, source: str) -> int:
    """200 lines over 4 s of event time a minute ago, three of which make large outputs."""
    start = (int(time.time()) - 60) * 1000
    lines = [f"w{i}".encode() for i in range(200)]
    for at, size in zip((10, 90, 150), SIZES, strict=True):
        lines[at] = f"size {size}".encode()
    produce(bootstrap, source, [(None, v, start + i * 20) for i, v in enumerate(lines)])
    return len(lines)


def run_until_committed(worker: Worker, bootstrap: str, app_id: str, source: str, n: int):
    deadline = time.monotonic() + 90
    while committed(bootstrap, app_id, source, 1)[0] < n:
        assert time.monotonic() < deadline, "the input was never committed to its end"
        worker.loop(duration=1.0)


def check_outputs(bootstrap: str, out: str, dlq: str, app_id: str) -> None:
    values = {m.value() for m in read_to_end(bootstrap, out)}
    # nothing lost, nothing refused written (Tansu shows records of aborted transactions
    # to read_committed readers: repeats are possible, so no count)
    assert values == {f"W{i}".encode() for i in range(200) if i not in (10, 90, 150)}
    letters = read_to_end(bootstrap, dlq)  # at least once each, like any output
    headers = [{k: v.decode() for k, v in m.headers()} for m in letters]
    assert {h["kstream.error.reason"] for h in headers} == {"produce"}
    assert {h["kstream.error.topic"] for h in headers} == {out}
    assert {h["kstream.error.type"] for h in headers} == {"MSG_SIZE_TOO_LARGE"}
    assert {h["kstream.error.operator"] for h in headers} == {"to-3"}
    assert {h["kstream.error.app_id"] for h in headers} == {app_id}
    # too large for the dead-letter topic too: they went without their key and value
    assert {(m.key(), m.value()) for m in letters} == {(None, None)}
    assert sorted({int(h["kstream.error.dropped_bytes"]) for h in headers}) == [
        len(b"size") + size for size in SIZES
    ]


@pytest.mark.parametrize("guarantee", ["at-least-once", "exactly-once"])
def test_outputs_refused_at_produce_are_dead_lettered_and_the_batch_commits(
    bootstrap, topics, app_id, tmp_path, guarantee
):
    source, out = topics("bloat-in"), topics("bloat-out")
    n = lines_with_large_outputs(bootstrap, source)
    app = bloating_app(
        app_id, bootstrap, source, out, tmp_path, guarantee, {"message.max.bytes": LIMIT}
    )
    worker = Worker(app)
    worker.prepare()
    worker.start()
    try:
        run_until_committed(worker, bootstrap, app_id, source, n)
        assert worker.restarts == 0  # refused at produce(): no step failed
    finally:
        worker.close()
    check_outputs(bootstrap, out, f"{app_id}-dlq", app_id)


class BrokerRefuses:
    """A worker's producer (the delivery makes each through it), but "the broker" refuses
    values above LIMIT bytes, to any topic: reported as librdkafka reports such a refusal,
    in a delivery report (in the redo of a failed step only, under exactly-once) and, in a
    transaction, by failing it."""

    def __init__(self, config):
        self._producer = Producer(config)
        # the producer's on_delivery, if any: at-least-once reports each send to the
        # delivery; exactly-once only when asked (per record)
        self._default_report = config.get("on_delivery")
        self._doomed = False  # the transaction holds a refused record

    def produce(self, topic, value=None, key=None, partition=-1, **kwargs):
        if len(value or b"") <= LIMIT:
            self._producer.produce(topic, value, key, partition, **kwargs)
            return
        self._doomed = True
        report = kwargs.get("on_delivery") or self._default_report
        if report is not None:
            error = KafkaError(KafkaError.MSG_SIZE_TOO_LARGE, "Broker: Message size too large")
            stamp = (1, kwargs.get("timestamp", 0))
            report(error, Message(topic=topic, key=key, value=value, error=error, timestamp=stamp))

    def commit_transaction(self, *args):
        if self._doomed:
            raise KafkaException(
                KafkaError(
                    KafkaError.MSG_SIZE_TOO_LARGE,
                    "ProduceRequest failed: Broker: Message size too large: current "
                    "transaction must be aborted",
                    txn_requires_abort=True,
                )
            )
        self._producer.commit_transaction(*args)

    def abort_transaction(self, *args):
        self._doomed = False
        self._producer.abort_transaction(*args)

    def __getattr__(self, name):
        return getattr(self._producer, name)


@pytest.mark.parametrize("guarantee", ["at-least-once", "exactly-once"])
def test_outputs_refused_in_delivery_reports_are_left_out_of_the_redo(
    bootstrap, topics, app_id, tmp_path, guarantee, caplog
):
    def refusing(*args, **kwargs):
        return open_delivery(*args, **kwargs, producer_factory=BrokerRefuses)

    source, out = topics("bloat-in"), topics("bloat-out")
    n = lines_with_large_outputs(bootstrap, source)
    app = bloating_app(app_id, bootstrap, source, out, tmp_path, guarantee, {})
    worker = Worker(app, delivery_factory=refusing)
    worker.prepare()
    worker.start()
    try:
        with caplog.at_level(logging.ERROR, "kstream.worker"):
            run_until_committed(worker, bootstrap, app_id, source, n)
        # each refusal failed its step once (the outputs' and, in the redo, their dead
        # letters'); exactly-once first learns which records, in a redo reporting each
        assert worker.restarts >= 2
        assert worker.checkpoint.refused == {}  # the redo caught up: forgotten
    finally:
        worker.close()
    check_outputs(bootstrap, out, f"{app_id}-dlq", app_id)
    restarts = [r.getMessage() for r in caplog.records if "starting over" in r.getMessage()]
    assert any(f"{out}: Broker: Message size too large" in line for line in restarts), restarts
    assert any(f"{app_id}-dlq: Broker: Message size too large" in line for line in restarts)
