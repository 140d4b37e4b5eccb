"""Poison records without a broker: a worker whose Kafka clients are stand-ins runs
batches of real `Message`s; what it would produce (outputs, dead letters) is recorded."""

from __future__ import annotations

import json
import logging
import operator

import pytest
from confluent_kafka import Message

import kstream
from kstream.observe.metrics import Metrics
from kstream.ops.stateful import keyed_items
from kstream.poison import Poison, PoisonRecordError
from kstream.worker import Worker
from tests.unit.offline import (
    FakeProducer,
    feed,
    frame_msg,
    marker_msg,
    msg,
    offline_worker,
    unframe,
)

T = 10_000  # the batch (ms): records stamped 9_000 .. 9_999
WRITER = 7  # the upstream run that wrote the repartition records of these tests


def headers(record: dict) -> dict[str, str]:
    return {k: v.decode() for k, v in record["headers"] if k.startswith("kstream.error.")}


def metric(w: Worker, name: str, **labels) -> float | None:
    return w.observer.metrics.registry.get_sample_value(name, {"app_id": w.app.app_id, **labels})


def parse(record):
    return (record["w"], 10 // record["n"])


def json_error(raw: bytes) -> str:
    try:
        json.loads(raw)
    except json.JSONDecodeError as e:
        return str(e)
    raise AssertionError(f"{raw!r} is valid JSON")


def good(w: str, n: int) -> bytes:
    return json.dumps({"w": w, "n": n}).encode()


# -- the source stage ---------------------------------------------------------------------
def source_app(**settings):
    app = kstream.App("p", batch_interval=1.0, **settings)
    app.stream("lines", value_serde="json").map(parse).to("out")
    return app


def test_culprits_are_isolated_and_dead_lettered_as_they_were_read(monkeypatch, tmp_path):
    app = source_app(state_dir=str(tmp_path))
    w = offline_worker(app, {"lines": 2, "out": 1}, FakeProducer(full_once=True))
    assert w.admin_factory.created == {"p-dlq": 1}
    bad_json = b'{"w": "x", "n": '
    msgs = [
        msg("lines", 0, 0, good("a", 1), key=b"k0"),
        msg("lines", 0, 1, bad_json, key=b"k1", headers=[("trace", b"t1")]),
        msg("lines", 0, 2, good("b", 2)),
        # a record that failed before (redriven): its old error headers are replaced
        msg("lines", 0, 3, good("z", 0), headers=[("kstream.error.reason", b"old")]),
        msg("lines", 0, 4, good("c", 5)),
        msg("lines", 1, 0, good("d", 1)),
        msg("lines", 1, 1, good("e", 0), key=b"ke", ts=9_500),
    ]
    feed(w, 0, msgs)
    w.run_batch(w.stages[0], T, (("lines", 0), ("lines", 1)))

    out = [(r["key"], r["value"]) for r in w.delivery.producer.to("out")]
    assert out == [(b"a", b"10"), (b"b", b"5"), (b"c", b"2"), (b"d", b"10")]
    letters = w.delivery.producer.to("p-dlq")
    assert [(r["key"], r["value"], r["timestamp"]) for r in letters] == [
        (b"k1", bad_json, 9_001),
        (None, good("z", 0), 9_003),
        (b"ke", good("e", 0), 9_500),
    ]
    assert letters[0]["headers"][0] == ("trace", b"t1")  # the record's own headers first
    common = {"kstream.error.batch": str(T), "kstream.error.app_id": "p"}
    assert [headers(r) for r in letters] == [
        {
            "kstream.error.reason": "deserialize",
            "kstream.error.type": "json.decoder.JSONDecodeError",
            "kstream.error.message": json_error(bad_json),
            "kstream.error.operator": "source-1 (value_serde=json)",
            "kstream.error.topic": "lines",
            "kstream.error.partition": "0",
            "kstream.error.offset": "1",
            "kstream.error.timestamp": "9001",
            **common,
        },
        {
            "kstream.error.reason": "function",
            "kstream.error.type": "ZeroDivisionError",
            "kstream.error.message": "integer division or modulo by zero",
            "kstream.error.operator": f"map-2 ({__name__}.parse)",
            "kstream.error.topic": "lines",
            "kstream.error.partition": "0",
            "kstream.error.offset": "3",
            "kstream.error.timestamp": "9003",
            **common,
        },
        {
            "kstream.error.reason": "function",
            "kstream.error.type": "ZeroDivisionError",
            "kstream.error.message": "integer division or modulo by zero",
            "kstream.error.operator": f"map-2 ({__name__}.parse)",
            "kstream.error.topic": "lines",
            "kstream.error.partition": "1",
            "kstream.error.offset": "1",
            "kstream.error.timestamp": "9500",
            **common,
        },
    ]
    assert [k for k, _ in letters[1]["headers"]].count("kstream.error.reason") == 1
    assert metric(w, "kstream_errors_total", kind="deserialize") == 1
    assert metric(w, "kstream_errors_total", kind="function") == 2
    assert metric(w, "kstream_dlq_records_total", topic="lines", reason="function") == 2
    assert metric(w, "kstream_dlq_records_total", topic="lines", reason="deserialize") == 1
    assert metric(w, "kstream_batch_records_sum") == 7


def test_a_batch_that_fails_only_with_its_records_together_is_dead_lettered_whole(
    monkeypatch, tmp_path, caplog
):
    def pairs_only_alone(batch):  # "a" and "b" together are too much
        if {"a", "b"} <= set(batch):
            raise ValueError("a and b together")
        return batch

    app = kstream.App("p", batch_interval=1.0, state_dir=str(tmp_path))
    app.stream("lines").transform(pairs_only_alone).to("out")
    w = offline_worker(app, {"lines": 2, "out": 1})
    feed(
        w,
        0,
        [
            msg("lines", 0, 0, b"a"),
            msg("lines", 0, 1, b"b"),
            msg("lines", 0, 2, b"c"),
            msg("lines", 1, 0, b"d"),
        ],
    )
    with caplog.at_level(logging.WARNING, "kstream.poison"):
        w.run_batch(w.stages[0], T, (("lines", 0), ("lines", 1)))
    assert [r["value"] for r in w.delivery.producer.to("out")] == [b"d"]
    letters = w.delivery.producer.to("p-dlq")
    assert [(r["value"], headers(r)["kstream.error.offset"]) for r in letters] == [
        (b"a", "0"),
        (b"b", "1"),
        (b"c", "2"),
    ]
    assert {headers(r)["kstream.error.message"] for r in letters} == {"a and b together"}
    assert "fails only with its records together" in caplog.text
    assert "lines[0]" in caplog.text


def test_skip_logs_and_counts_without_a_dead_letter_topic(monkeypatch, tmp_path, caplog):
    app = source_app(state_dir=str(tmp_path), on_error="skip")
    w = offline_worker(app, {"lines": 1, "out": 1})
    assert w.dlq_topic is None and w.admin_factory.created == {}
    now = [1000.0]
    w.poison.clock = lambda: now[0]
    feed(w, 0, [msg("lines", 0, i, good("a", i % 3)) for i in range(6)])
    with caplog.at_level(logging.WARNING, "kstream.poison"):
        w.run_batch(w.stages[0], T, (("lines", 0),))
    assert [r["value"] for r in w.delivery.producer.sent] == [b"10", b"5", b"10", b"5"]
    # rate-limited: the first is named, the second waits for the period to end
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "skipping record lines[0]@0: map-2 (tests.unit.test_poison.parse) raised "
        "ZeroDivisionError: integer division or modulo by zero"
    ]
    assert metric(w, "kstream_errors_total", kind="function") == 2
    assert metric(w, "kstream_dlq_records_total", topic="lines", reason="function") is None
    now[0] += 9.9  # within the period: the line left out waits
    w.poison.tick()
    assert len(caplog.records) == 1
    now[0] += 0.1
    w.poison.tick()
    assert "1 more poison record line(s) left out" in caplog.records[-1].getMessage()
    assert len(caplog.records) == 2


def test_poison_lines_are_paced_by_its_clock(caplog):
    now = [0.0]
    poison = Poison("p", "skip", None, Metrics("p"), log_every=10.0, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, "kstream.poison"):
        poison.note("first")
        now[0] = 5.0
        poison.note("second")
        poison.note("third")
        poison.tick()  # the period is not over: nothing yet
        now[0] = 10.0
        poison.note("fourth")
        poison.tick()  # nothing left out since "fourth"
        now[0] = 25.0
        poison.note("fifth")
    assert [r.getMessage() for r in caplog.records] == [
        "first",
        "fourth (2 more such lines left out)",
        "fifth",
    ]


def test_fail_stops_with_one_line_naming_the_record(monkeypatch, tmp_path):
    app = source_app(state_dir=str(tmp_path), on_error="fail")
    w = offline_worker(app, {"lines": 1, "out": 1})
    feed(w, 0, [msg("lines", 0, 0, good("a", 1)), msg("lines", 0, 1, b"not json")])
    with pytest.raises(PoisonRecordError) as e:
        w.run_batch(w.stages[0], T, (("lines", 0),))
    text = str(e.value)
    assert "\n" not in text
    assert text.startswith("poison record lines[0]@1 in batch 10000: cannot deserialize in ")
    assert "JSONDecodeError" in text and "on_error=fail" in text
    assert w.delivery.producer.sent == []


def test_a_record_that_fails_for_one_of_two_readers_is_poison_for_both(monkeypatch, tmp_path):
    app = kstream.App("p", batch_interval=1.0, state_dir=str(tmp_path))
    app.stream("lines").to("raw")
    app.stream("lines", value_serde="int").to("ints")
    w = offline_worker(app, {"lines": 1, "raw": 1, "ints": 1})
    feed(w, 0, [msg("lines", 0, 0, b"1"), msg("lines", 0, 1, b"x"), msg("lines", 0, 2, b"3")])
    w.run_batch(w.stages[0], T, (("lines", 0),))
    assert [r["value"] for r in w.delivery.producer.to("raw")] == [b"1", b"3"]
    assert [r["value"] for r in w.delivery.producer.to("ints")] == [b"1", b"3"]
    (letter,) = w.delivery.producer.to("p-dlq")
    assert headers(letter)["kstream.error.operator"] == "source-3 (value_serde=int)"


def test_a_failing_sink_makes_the_whole_batch_poison_and_drops_its_outputs(monkeypatch, tmp_path):
    seen = []

    def sink(records):
        seen.append(list(records))
        if "boom" in records:
            raise RuntimeError("cannot write")

    app = kstream.App("p", batch_interval=1.0, state_dir=str(tmp_path))
    s = app.stream("lines")
    s.to("out")
    s.foreach_batch(sink)
    w = offline_worker(app, {"lines": 1, "out": 1})
    waited = virtual_sleep(app, "foreach_batch")
    feed(w, 0, [msg("lines", 0, 0, b"ok"), msg("lines", 0, 1, b"boom")])
    w.run_batch(w.stages[0], T, (("lines", 0),))
    assert w.delivery.producer.to("out") == []
    assert [r["value"] for r in w.delivery.producer.to("p-dlq")] == [b"ok", b"boom"]
    # tried 4 times (3 retries), then once more without the batch's records
    assert seen == [["ok", "boom"]] * 4 + [[]]
    assert waited == [1.0, 2.0, 4.0]
    assert headers(w.delivery.producer.to("p-dlq")[0])["kstream.error.operator"].startswith(
        "foreach_batch-3 ("
    )


def virtual_sleep(app, kind: str) -> list[float]:
    """The waits of the app's operator of that kind, recorded instead of slept."""
    (op,) = [n.op for n in app.nodes if n.op.kind == kind]
    waited: list[float] = []
    op.sleep = waited.append
    return waited


def test_a_sink_that_fails_once_is_retried_and_its_batch_is_not_poison(monkeypatch, tmp_path):
    written = []

    def write(records):
        if not written:
            written.append("connection lost")
            raise ConnectionResetError("connection reset by peer")
        written.append(list(records))

    app = kstream.App("p", batch_interval=1.0, state_dir=str(tmp_path))
    s = app.stream("lines")
    s.to("out")
    s.foreach_batch(write, retries=2, backoff=0.5)
    w = offline_worker(app, {"lines": 1, "out": 1})
    waited = virtual_sleep(app, "foreach_batch")
    feed(w, 0, [msg("lines", 0, 0, b"a"), msg("lines", 0, 1, b"b")])
    w.run_batch(w.stages[0], T, (("lines", 0),))
    assert written == ["connection lost", ["a", "b"]]
    assert waited == [0.5]
    assert [r["value"] for r in w.delivery.producer.to("out")] == [b"a", b"b"]
    assert w.delivery.producer.to("p-dlq") == []
    assert metric(w, "kstream_errors_total", kind="function") is None


def test_an_operator_that_fails_without_records_stops_the_worker(monkeypatch, tmp_path):
    def broken(batch):
        raise KeyError("config")

    app = kstream.App("p", batch_interval=1.0, state_dir=str(tmp_path))
    app.stream("lines").transform(broken).to("out")
    w = offline_worker(app, {"lines": 1, "out": 1})
    feed(w, 0, [msg("lines", 0, 0, b"a")])
    with pytest.raises(PoisonRecordError, match="even without any input record"):
        w.run_batch(w.stages[0], T, (("lines", 0),))


# -- stages after a shuffle ---------------------------------------------------------------
def exchange_msgs(topic: str, p: int, records: list, tasks=(("lines", 0),)) -> list[Message]:
    msgs = [frame_msg(topic, p, i, T, [r], WRITER) for i, r in enumerate(records)]
    return [*msgs, marker_msg(topic, p, len(records), T, tasks, WRITER)]


def test_a_stage_after_a_shuffle_isolates_its_intermediate_records(monkeypatch, tmp_path):
    app = kstream.App("p", batch_interval=1.0, state_dir=str(tmp_path))
    (
        app.stream("lines")
        .map(lambda w: (w, 1))
        .reduce_by_key(operator.add)
        .map(lambda kv: (kv[0], 6 // (kv[1] - 2)))
        .to("out")
    )
    w = offline_worker(app, {"lines": 1, "out": 1})
    (topic,) = w.exchange_partitions
    assert w.exchange_partitions == {topic: 1}
    feed(w, 1, exchange_msgs(topic, 0, [("a", 1), ("b", 2), ("c", 5)]))
    w.run_batch(w.stages[1], T, ((topic, 0),))
    assert [(r["key"], r["value"]) for r in w.delivery.producer.to("out")] == [
        (b"a", b"-6"),
        (b"c", b"2"),
    ]
    (letter,) = w.delivery.producer.to("p-dlq")
    assert letter["key"] is None
    assert unframe(letter["value"]) == (T, 0, [("b", 2)], WRITER)
    assert ("kstream.format", b"msgpack/1") in letter["headers"]  # how to read the value
    h = headers(letter)
    assert (h["kstream.error.topic"], h["kstream.error.partition"]) == (topic, "0")
    assert h["kstream.error.offset"] == "1"
    assert h["kstream.error.operator"].startswith("map-5 (")  # 4: the shuffle
    assert h["kstream.error.type"] == "ZeroDivisionError"


def test_a_poison_record_in_a_frame_of_several_goes_alone(monkeypatch, tmp_path):
    app = kstream.App("p", batch_interval=1.0, state_dir=str(tmp_path))
    app.stream("lines").map(lambda w: (w, 1)).reduce_by_key(operator.add).map(
        lambda kv: (kv[0], 6 // (kv[1] - 2))
    ).to("out")
    w = offline_worker(app, {"lines": 1, "out": 1})
    (topic,) = w.exchange_partitions
    frame = frame_msg(topic, 0, 7, T, [("a", 1), ("b", 2), ("c", 5)], WRITER)
    feed(w, 1, [frame, marker_msg(topic, 0, 8, T, (("lines", 0),), WRITER)])
    w.run_batch(w.stages[1], T, ((topic, 0),))
    assert [(r["key"], r["value"]) for r in w.delivery.producer.to("out")] == [
        (b"a", b"-6"),
        (b"c", b"2"),
    ]
    (letter,) = w.delivery.producer.to("p-dlq")
    assert unframe(letter["value"]) == (T, 0, [("b", 2)], WRITER)
    assert headers(letter)["kstream.error.offset"] == "7"  # its frame's


def stateful_app(tmp_path, fn):
    app = kstream.App("p", batch_interval=1.0, state_dir=str(tmp_path))
    app.stream("lines").map(lambda w: (w, 1)).update_state_by_key(fn).to("out")
    return app


def test_a_stage_with_state_rolls_the_task_back_and_dead_letters_its_batch(monkeypatch, tmp_path):
    def collect(values, state):  # changes its state in place, then fails
        state = state if state is not None else []
        state.extend(values)
        if "bad" in values:
            raise ValueError("bad value")
        return state

    app = stateful_app(tmp_path, collect)
    w = offline_worker(app, {"lines": 1, "out": 1})
    (topic,) = w.exchange_partitions
    (node,) = w.stores.nodes[topic]
    store = w.stores.open[(node, 0)] = w.stores._open(node, 0)
    stage = w.stages[1]
    # combined upstream: (key, [values])
    feed(w, 1, exchange_msgs(topic, 0, [("a", [1]), ("b", [1])]))
    w.run_batch(stage, T, ((topic, 0),))
    # a second batch in the same step: its changes sit on top of the first one's
    nxt = [
        frame_msg(topic, 0, 3 + i, T + 1000, [r], WRITER)
        for i, r in enumerate([("a", [2]), ("b", ["bad"])])
    ]
    marker = marker_msg(topic, 0, 5, T + 1000, (("lines", 0),), WRITER)
    stage.ingest(topic, [*nxt, marker], 20_000)
    w.run_batch(stage, T + 1000, ((topic, 0),))

    outs = [(r["timestamp"], r["key"], r["value"]) for r in w.delivery.producer.to("out")]
    assert outs == [
        (T, b"a", b"[1]"),
        (T, b"b", b"[1]"),
        (T + 1000, b"a", b"[1]"),
        (T + 1000, b"b", b"[1]"),
    ]
    letters = w.delivery.producer.to("p-dlq")
    assert [unframe(r["value"]) for r in letters] == [
        (T + 1000, 0, [("a", [2])], WRITER),
        (T + 1000, 0, [("b", ["bad"])], WRITER),
    ]
    assert {headers(r)["kstream.error.message"] for r in letters} == {"bad value"}
    store.commit(None)  # what the first batch did, and the second without its input
    assert dict(keyed_items(store)) == {"a": [1], "b": [1]}
    store.close()


def test_a_stage_with_state_failing_without_input_stops(monkeypatch, tmp_path):
    def boom(values, state):
        if state is not None:
            raise RuntimeError("state is broken")
        return 1

    app = stateful_app(tmp_path, boom)
    w = offline_worker(app, {"lines": 1, "out": 1})
    (topic,) = w.exchange_partitions
    (node,) = w.stores.nodes[topic]
    w.stores.open[(node, 0)] = w.stores._open(node, 0)
    feed(w, 1, exchange_msgs(topic, 0, [("a", [1])]))
    w.run_batch(w.stages[1], T, ((topic, 0),))
    marker = marker_msg(topic, 0, 2, T + 1000, (("lines", 0),), WRITER)
    w.stages[1].ingest(topic, [marker], 20_000)
    with pytest.raises(
        PoisonRecordError, match=r"update_state_by_key\.\S*boom .*even without any input"
    ):
        w.run_batch(w.stages[1], T + 1000, ((topic, 0),))
    w.stores.close()


def test_late_session_records_go_to_the_dead_letter_topic(monkeypatch, tmp_path):
    app = kstream.App("p", batch_interval=1.0, state_dir=str(tmp_path), on_error="skip")
    app.stream("lines").map(lambda w: (w, 1)).reduce_by_key_and_session(
        operator.add, 2.0, late="dlq"
    ).to("out")
    w = offline_worker(app, {"lines": 1, "out": 1})
    assert w.dlq_topic == "p-dlq"
    (topic,) = w.exchange_partitions
    (node,) = w.stores.nodes[topic]
    w.stores.open[(node, 0)] = w.stores._open(node, 0)
    stage = w.stages[1]
    stage.assign([(topic, 0)])
    offset = 0
    for t, records in [(T + 1000, [("a", 1)]), (T, [("a", 5)])]:  # the second is late
        batch = [frame_msg(topic, 0, offset + i, t, [r], WRITER) for i, r in enumerate(records)]
        offset += len(records) + 1
        marker = marker_msg(topic, 0, offset - 1, t, (("lines", 0),), WRITER)
        stage.ingest(topic, [*batch, marker], 20_000)
        w.run_batch(stage, t, ((topic, 0),))
    (letter,) = w.delivery.producer.to("p-dlq")
    assert unframe(letter["value"]) == (T, 0, [("a", 5)], 0)  # no writer: a late record
    h = headers(letter)
    assert h["kstream.error.reason"] == "late"
    assert "kstream.error.offset" not in h
    assert h["kstream.error.operator"].startswith("reduce_by_key_and_session.add (")
    assert "older than its key's open session" in h["kstream.error.message"]
    assert metric(w, "kstream_dlq_records_total", topic=topic, reason="late") == 1
    w.stores.close()


def test_every_task_of_a_stage_with_state_runs_its_batch_records_or_not(monkeypatch, tmp_path):
    # a task with no records in a batch still runs it (its states are emitted), also
    # when it is not the first task of the run
    app = stateful_app(tmp_path, lambda values, state: sum(values) + (state or 0))
    w = offline_worker(app, {"lines": 2, "out": 1})
    (topic,) = w.exchange_partitions
    assert w.exchange_partitions == {topic: 2}
    (node,) = w.stores.nodes[topic]
    stores = [w.stores._open(node, p) for p in (0, 1)]
    for p in (0, 1):
        w.stores.open[(node, p)] = stores[p]
    tasks = (("lines", 0), ("lines", 1))
    feed(
        w,
        1,
        exchange_msgs(topic, 0, [("a", [1])], tasks) + exchange_msgs(topic, 1, [("b", [1])], tasks),
    )
    w.stages[1].closer.closed_through = T  # as the loop has it when it runs batch T
    w.run_batch(w.stages[1], T, ((topic, 0), (topic, 1)))
    markers = [
        marker_msg(topic, p, 2 + i, T + 1000, tasks, WRITER) for p in (0, 1) for i in range(2)
    ]
    w.stages[1].ingest(topic, markers, 0)
    w.stages[1].closer.closed_through = T + 1000
    w.run_batch(w.stages[1], T + 1000, ((topic, 0), (topic, 1)))
    outs = [(r["timestamp"], r["key"]) for r in w.delivery.producer.to("out")]
    assert outs == [(T, b"a"), (T, b"b"), (T + 1000, b"a"), (T + 1000, b"b")]
    for store in stores:
        store.close()
