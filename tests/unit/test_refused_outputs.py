"""Outputs Kafka refuses for good (too large, invalid, not authorized, no such topic) are
poison records of reason `produce`, without a broker: a worker whose producer refuses
like librdkafka does (at produce(), or in a delivery report of a step that then failed)."""

from __future__ import annotations

import logging

import pytest
from confluent_kafka import KafkaError, Message

import kstream
from kstream.delivery import SendFailedError
from kstream.poison import PoisonRecordError
from kstream.worker import Worker
from tests.unit.offline import (
    FakeProducer,
    OfflineDelivery,
    RestartingConsumer,
    feed,
    msg,
    offline_worker,
    restart_once,
)

T = 10_000
SOURCE = (("lines", 0),)


def render(line: str):
    """`size N` becomes a value of N bytes, anything else its upper case."""
    word, _, n = line.partition(" ")
    return (word, "x" * int(n)) if word == "size" else (word, line.upper())


def render_app(tmp_path, **settings) -> kstream.App:
    app = kstream.App("p", batch_interval=1.0, state_dir=str(tmp_path), **settings)
    app.stream("lines").map(render).to("out")
    return app


def feed_lines(w: Worker) -> None:
    lines = [b"a", b"size 300", b"b", b"size 5000"]
    feed(w, 0, [msg("lines", 0, i, line) for i, line in enumerate(lines)])


def refusing_worker(monkeypatch, tmp_path, producer: FakeProducer, **settings) -> Worker:
    w = offline_worker(render_app(tmp_path, **settings), {"lines": 1, "out": 1}, producer)
    feed_lines(w)
    return w


def errors(record: dict) -> dict[str, str]:
    return {k: v.decode() for k, v in record["headers"] if k.startswith("kstream.error.")}


def metric(w: Worker, name: str, **labels) -> float | None:
    return w.observer.metrics.registry.get_sample_value(name, {"app_id": w.app.app_id, **labels})


def test_an_output_too_large_for_its_topic_is_dead_lettered_and_the_batch_goes_on(
    monkeypatch, tmp_path
):
    producer = FakeProducer(max_bytes={"out": 100, "p-dlq": 2000})
    w = refusing_worker(monkeypatch, tmp_path, producer)
    w.run_batch(w.stages[0], T, SOURCE)

    assert [(r["key"], r["value"]) for r in producer.to("out")] == [(b"a", b"A"), (b"b", b"B")]
    fits, too_large = producer.to("p-dlq")
    why = {
        "kstream.error.reason": "produce",
        "kstream.error.type": "MSG_SIZE_TOO_LARGE",
        "kstream.error.message": "Unable to produce message: Broker: Message size too large",
        "kstream.error.operator": "to-3",
        "kstream.error.topic": "out",  # where it was meant to go
        "kstream.error.timestamp": str(T),
        "kstream.error.batch": str(T),
        "kstream.error.app_id": "p",
    }
    assert (fits["key"], fits["value"], fits["timestamp"]) == (b"size", b"x" * 300, T)
    assert errors(fits) == why
    # too large for the dead-letter topic too: it goes without its key and value
    assert (too_large["key"], too_large["value"], too_large["timestamp"]) == (None, None, T)
    assert errors(too_large) == {**why, "kstream.error.dropped_bytes": str(4 + 5000)}
    assert metric(w, "kstream_errors_total", kind="produce") == 2
    assert metric(w, "kstream_dlq_records_total", topic="out", reason="produce") == 2


def test_skip_drops_a_refused_output_and_counts_it(monkeypatch, tmp_path, caplog):
    producer = FakeProducer(max_bytes={"out": 1000})
    w = refusing_worker(monkeypatch, tmp_path, producer, on_error="skip")
    with caplog.at_level(logging.WARNING, "kstream.poison"):
        w.run_batch(w.stages[0], T, SOURCE)
    assert [r["key"] for r in producer.to("out")] == [b"a", b"size", b"b"]
    assert producer.to("p-dlq") == []
    assert "skipping record out: to-3 could not write it to out: MSG_SIZE_TOO_LARGE" in caplog.text
    assert metric(w, "kstream_errors_total", kind="produce") == 1


def test_fail_stops_with_one_line_naming_the_topic(monkeypatch, tmp_path):
    w = refusing_worker(
        monkeypatch, tmp_path, FakeProducer(max_bytes={"out": 1000}), on_error="fail"
    )
    with pytest.raises(PoisonRecordError) as stopped:
        w.run_batch(w.stages[0], T, SOURCE)
    line = str(stopped.value)
    assert "\n" not in line
    assert line.startswith(f"poison record out in batch {T}: to-3 could not write it to out: ")
    assert "MSG_SIZE_TOO_LARGE" in line and "on_error=fail" in line


def test_a_topic_the_worker_may_not_write_makes_its_records_poison(monkeypatch, tmp_path):
    denied = KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED, "Broker: Topic authorization failed")
    producer = FakeProducer(errors={"audit": denied})
    app = kstream.App("p", batch_interval=1.0, state_dir=str(tmp_path))
    lines = app.stream("lines")
    lines.to("out")
    lines.to("audit")
    w = offline_worker(app, {"lines": 1, "out": 1, "audit": 1}, producer)
    feed(w, 0, [msg("lines", 0, 0, b"a"), msg("lines", 0, 1, b"b")])
    w.run_batch(w.stages[0], T, SOURCE)
    assert [r["value"] for r in producer.to("out")] == [b"a", b"b"]
    letters = producer.to("p-dlq")
    assert [(r["value"], errors(r)["kstream.error.topic"]) for r in letters] == [
        (b"a", "audit"),
        (b"b", "audit"),
    ]
    assert {errors(r)["kstream.error.type"] for r in letters} == {"TOPIC_AUTHORIZATION_FAILED"}


def test_other_produce_errors_fail_the_step_naming_the_topic(monkeypatch, tmp_path):
    """Not the record's fault: the worker starts over (SendFailedError), as before, but the
    error now says which topic."""
    state = KafkaError(KafkaError._STATE, "Operation not valid in state Ready")
    w = refusing_worker(monkeypatch, tmp_path, FakeProducer(errors={"out": state}))
    with pytest.raises(SendFailedError, match=r"^out: Operation not valid in state Ready$"):
        w.run_batch(w.stages[0], T, SOURCE)
    assert w.delivery.producer.to("p-dlq") == []


def test_a_refused_repartition_record_fails_the_step_naming_its_topic(monkeypatch, tmp_path):
    """Only outputs are poison: a refused internal record is the worker's problem."""
    app = kstream.App("p", batch_interval=1.0, state_dir=str(tmp_path))
    app.stream("lines").map(render).group_by_key().to("out")
    producer = FakeProducer()
    w = offline_worker(app, {"lines": 1, "out": 1}, producer)
    (exchange,) = w.plan.exchanges
    repartition = exchange.topic
    producer.max_bytes[repartition] = 1000
    feed(w, 0, [msg("lines", 0, 0, b"size 3000")])
    with pytest.raises(SendFailedError, match=f"^{repartition}: .*Message size too large"):
        w.run_batch(w.stages[0], T, SOURCE)


# -- refused in a delivery report: the step fails, and its redo leaves the records out ---------
def report(topic: str, key: bytes | None, value: bytes | None, t: int = T) -> Message:
    """A failed delivery report, as librdkafka gives one for a record the broker refused."""
    refused = KafkaError(KafkaError.MSG_SIZE_TOO_LARGE, "Broker: Message size too large")
    return Message(topic=topic, key=key, value=value, error=refused, timestamp=(1, t))


def test_a_record_refused_in_a_delivery_report_is_dead_lettered_when_its_step_is_redone(
    tmp_path,
):
    big = b"x" * 5000
    # the failed step's delivery reports: both large outputs refused, and (in an earlier
    # redo) the dead letter of the larger one too
    failed = OfflineDelivery(
        refused=[
            report("out", b"size", b"x" * 300),
            report("out", b"size", big),
            report("p-dlq", b"size", big),
        ]
    )
    redo = FakeProducer()
    deliveries = iter([failed, OfflineDelivery(redo)])
    w = offline_worker(
        render_app(tmp_path),
        {"lines": 1, "out": 1},
        delivery_factory=lambda *args, **kwargs: next(deliveries),
        consumer_factory=RestartingConsumer,
    )
    restart_once(w)  # the step fails; its redo runs on the next incarnation's delivery
    assert w.delivery is not failed and w.delivery.producer is redo

    feed_lines(w)
    w.run_batch(w.stages[0], T, SOURCE)
    assert [r["key"] for r in redo.to("out")] == [b"a", b"b"]
    kept, stripped = redo.to("p-dlq")
    assert (kept["key"], kept["value"]) == (b"size", b"x" * 300)
    assert errors(kept)["kstream.error.message"] == "Broker: Message size too large"
    assert (stripped["key"], stripped["value"]) == (None, None)
    assert errors(stripped)["kstream.error.dropped_bytes"] == str(4 + 5000)


def test_a_restart_after_a_failed_step_makes_an_exactly_once_redo_report_each(
    monkeypatch, tmp_path
):
    made = []

    class Recorded(OfflineDelivery):
        def __init__(self, brokers, kafka, on_problem, transactional_id, report_each=False):
            super().__init__()
            self.producer = FakeProducer()
            made.append(report_each)

    app = kstream.App("p", state_dir=str(tmp_path), guarantee="exactly-once")
    app.stream("lines").to("out")
    w = offline_worker(
        app, {"lines": 1, "out": 1}, delivery_factory=Recorded, consumer_factory=RestartingConsumer
    )
    assert made == [False]
    restart_once(w)
    assert made == [False, True]
