"""No code from a topic: a worker reads repartition and changelog records only in their
operator's format (the `kstream.format` header), so a pickle written there is never
loaded unless the operator opted in; a value the format does not carry stops the run,
naming the operator; `serde="pickle"` (per operator or per app) carries it."""

from __future__ import annotations

import operator
import pickle

import pytest
from confluent_kafka import KafkaError, Message

import kstream
from kstream import FormatError
from kstream.codec import HEADER, Msgpack, Pickle
from kstream.kafka import exchange
from kstream.state.changelog import ChangelogReader
from kstream.state.rocks import FORMAT, RocksStore, StoreMemory
from tests.unit.offline import CODEC, feed, marker_msg, msg, offline_worker

T = 10_000
TOPIC = "p--reduce_by_key.add--repartition"  # the word count's
POINTS = "p--reduce_by_key.add_points--repartition"
CHANGELOG = "p--update_state_by_key.count_points--changelog"


class Boom:
    """Unpickling it creates a file: what an attacker's payload would do."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


class Point:
    def __init__(self, x):
        self.x = x


def add_points(a, b):
    return Point(a.x + b.x)


def word_count(tmp_path, **settings) -> kstream.App:
    app = kstream.App("p", batch_interval=1.0, state_dir=str(tmp_path), **settings)
    app.stream("lines").map(lambda w: (w, 1)).reduce_by_key(operator.add).to("out")
    return app


def crafted(tmp_path) -> list[tuple[str, list | None, bytes]]:
    """Records an attacker might write: (what, headers, value)."""
    boom = pickle.dumps(Boom(tmp_path / "pwned"))
    return [
        ("pickle/1", [(HEADER, b"pickle/1")], boom),
        ("no header", None, boom),
        ("msgpack/9", [(HEADER, b"msgpack/9")], boom),
        ("another header only", [("origin", b"x")], boom),
    ]


@pytest.mark.parametrize("case", range(4))
def test_a_pickle_in_a_repartition_topic_is_not_read(monkeypatch, tmp_path, case):
    w = offline_worker(word_count(tmp_path), {"lines": 1, "out": 1})
    what, headers, value = crafted(tmp_path)[case]
    good = marker_msg(TOPIC, 0, 0, T, (("lines", 0),), 1)
    bad = msg(TOPIC, 0, 1, value, ts=T, headers=headers)
    with pytest.raises(FormatError) as e:
        feed(w, 1, [good, bad])
    assert not (tmp_path / "pwned").exists()
    message = str(e.value)
    assert message.startswith(f"{TOPIC}[0]@1: a record that ") and "\n" not in message
    assert "reads msgpack/1 there" in message and "kstream reset" in message
    if what == "pickle/1":
        assert 'only serde="pickle" reads it' in message


def test_a_frame_msgpack_cannot_read_stops_the_worker(monkeypatch, tmp_path):
    w = offline_worker(word_count(tmp_path), {"lines": 1, "out": 1})
    garbage = msg(TOPIC, 0, 4, b"\xc1\x00", ts=T, headers=CODEC.headers)
    with pytest.raises(FormatError, match=rf"{TOPIC}\[0\]@4: a record that msgpack/1 cannot"):
        feed(w, 1, [garbage])


class Consumer:
    """A stand-in for the restore consumer: hands out the given messages once."""

    def __init__(self, msgs):
        self.msgs = msgs

    def consume(self, n, timeout):
        msgs, self.msgs = self.msgs, []
        return msgs


@pytest.mark.parametrize("case", range(4))
def test_a_pickle_in_a_changelog_is_not_restored(tmp_path, case):
    _, headers, value = crafted(tmp_path)[case]
    reader = ChangelogReader("127.0.0.1:1", {}, {CHANGELOG: CODEC})
    reader.consumer = Consumer(
        [
            Message(topic=CHANGELOG, partition=0, offset=3, key=b"\x01k", value=b"\x01",
                    headers=CODEC.headers),
            Message(topic=CHANGELOG, partition=0, offset=4, key=value, value=value,
                    headers=headers),
        ]
    )  # fmt: skip
    reader.next = {(CHANGELOG, 0): 3}
    with pytest.raises(FormatError, match=rf"^{CHANGELOG}\[0\]@4: a record that "):
        reader.read(1.0)
    assert not (tmp_path / "pwned").exists()


def test_a_changelog_in_the_operators_format_is_restored_to_its_end(tmp_path):
    reader = ChangelogReader("127.0.0.1:1", {}, {CHANGELOG: CODEC})

    def record(p, offset):
        key = b"\x01k%d" % offset
        return Message(topic=CHANGELOG, partition=p, offset=offset, key=key, value=b"\x01",
                       headers=CODEC.headers)  # fmt: skip

    def end(p, offset):
        return Message(topic=CHANGELOG, partition=p, offset=offset,
                       error=KafkaError(KafkaError._PARTITION_EOF))  # fmt: skip

    reader.consumer = Consumer(
        [record(0, 3), record(1, 0), record(0, 4), end(0, 5), record(0, 5), record(1, 1)]
    )
    reader.consumer.incremental_unassign = lambda tps: None
    reader.next = {(CHANGELOG, 0): 3, (CHANGELOG, 1): 0}
    records, ended = reader.read(0.05)
    assert records == {
        (CHANGELOG, 0): [(b"\x01k3", b"\x01"), (b"\x01k4", b"\x01")],  # none after its end
        (CHANGELOG, 1): [(b"\x01k0", b"\x01"), (b"\x01k1", b"\x01")],
    }
    assert ended == {(CHANGELOG, 0): 5} and reader.next == {(CHANGELOG, 1): 2}


# -- values the format does not carry -----------------------------------------------------
def points(tmp_path, serde=None, **settings) -> kstream.App:
    app = kstream.App("p", batch_interval=1.0, state_dir=str(tmp_path), **settings)
    summed = app.stream("lines").map(lambda w: (w, Point(1)))
    summed = summed.reduce_by_key(add_points, serde=serde).map_values(lambda p: p.x)
    summed.to("out")
    return app


def run_points(monkeypatch, app) -> list[tuple[bytes, bytes]]:
    """Stage 0 on two lines, its frames into stage 1: the outputs."""
    w = offline_worker(app, {"lines": 1, "out": 1})
    feed(w, 0, [msg("lines", 0, 0, b"a"), msg("lines", 0, 1, b"a")])
    w.run_batch(w.stages[0], T, (("lines", 0),))
    sent = w.delivery.producer.to(POINTS)
    assert {tuple(r["headers"]) for r in sent} == {((HEADER, b"pickle/1"),)}
    msgs = [msg(POINTS, 0, i, r["value"], ts=T, headers=r["headers"]) for i, r in enumerate(sent)]
    feed(w, 1, msgs)
    w.run_batch(w.stages[1], T, ((POINTS, 0),))
    return [(r["key"], r["value"]) for r in w.delivery.producer.to("out")]


def test_a_value_msgpack_does_not_carry_stops_the_worker_naming_the_operator(monkeypatch, tmp_path):
    w = offline_worker(points(tmp_path), {"lines": 1, "out": 1})
    feed(w, 0, [msg("lines", 0, 0, b"a")])
    with pytest.raises(FormatError) as e:
        w.run_batch(w.stages[0], T, (("lines", 0),))
    message = str(e.value)
    assert message.startswith(
        "reduce_by_key.add_points (tests.unit.test_internal_format.add_points): a record for "
        f"{POINTS} "
        "cannot be written as msgpack/1: tests.unit.test_internal_format.Point is not among"
    )
    assert 'serde="pickle" on the operator or internal_serde="pickle" on the App' in message
    assert "can run code in its workers" in message


def test_serde_pickle_on_the_operator_carries_any_value(monkeypatch, tmp_path):
    assert run_points(monkeypatch, points(tmp_path, serde="pickle")) == [(b"a", b"2")]


def test_internal_serde_pickle_on_the_app_carries_any_value(monkeypatch, tmp_path):
    app = points(tmp_path, internal_serde="pickle")
    assert run_points(monkeypatch, app) == [(b"a", b"2")]


def point_state(serde=None, **settings) -> tuple[kstream.App, object]:
    app = kstream.App("p", batch_interval=1.0, **settings)
    s = app.queue_stream([["a", "b", "a"], ["a"]]).map(lambda w: (w, 1))
    out = s.update_state_by_key(count_points, serde=serde).map_values(lambda p: p.x).collect()
    return app, out


def count_points(values, state):
    return Point((state.x if state else 0) + len(values))


def test_a_user_class_in_state_is_an_error_naming_the_operator():
    app, _ = point_state()
    with pytest.raises(FormatError) as e:
        app.run_batches(1)
    assert str(e.value).startswith(
        "update_state_by_key.count_points (tests.unit.test_internal_format.count_points): "
        "a value of "
        "its state cannot be written as msgpack/1: tests.unit.test_internal_format.Point"
    )
    assert 'serde="pickle"' in str(e.value)


def test_a_user_class_as_a_state_key_is_an_error_naming_the_operator():
    app = kstream.App("p", batch_interval=1.0)
    app.queue_stream([[1]]).map(lambda x: (Point(x), 1)).update_state_by_key(
        lambda values, state: len(values)
    ).count().collect()
    with pytest.raises(FormatError, match=r"^update_state_by_key\.\S+ .*: a key of its state"):
        app.run_batches(1)


@pytest.mark.parametrize("how", ["operator", "app"])
def test_a_user_class_in_state_works_with_the_pickle_opt_in(how):
    app, out = point_state("pickle") if how == "operator" else point_state(internal_serde="pickle")
    app.run_batches(2)
    assert [sorted(r) for _, r in out.batches] == [[("a", 2), ("b", 1)], [("a", 3), ("b", 1)]]


class Delivery:
    """A stand-in for the worker's delivery: records the changelog records sent."""

    def __init__(self):
        self.sent = []

    def send_changelog(self, topic, partition, key, value, headers):
        self.sent.append((topic, partition, key, value, headers))


def stateful_worker(monkeypatch, tmp_path, serde):
    app = kstream.App("p", batch_interval=1.0, state_dir=str(tmp_path))
    counts = app.stream("lines").map(lambda w: (w, 1))
    counts.update_state_by_key(count_points, serde=serde).map_values(lambda p: p.x).to("out")
    w = offline_worker(app, {"lines": 1, "out": 1})
    (node,) = w.stores.nodes["p--update_state_by_key.count_points--repartition"]
    store = w.stores.open[(node, 0)] = w.stores._open(node, 0)
    feed(w, 0, [msg("lines", 0, 0, b"a")])
    w.run_batch(w.stages[0], T, (("lines", 0),))
    topic = "p--update_state_by_key.count_points--repartition"
    sent = w.delivery.producer.to(topic)
    feed(
        w, 1, [msg(topic, 0, i, r["value"], ts=T, headers=r["headers"]) for i, r in enumerate(sent)]
    )
    w.run_batch(w.stages[1], T, ((topic, 0),))
    w.checkpoint.delivery = Delivery()
    return w, store


def test_a_user_class_in_state_on_kafka_stops_the_worker_naming_the_operator(monkeypatch, tmp_path):
    w, store = stateful_worker(monkeypatch, tmp_path, None)
    try:
        with pytest.raises(
            FormatError, match=r"^update_state_by_key\.count_points \(.*count_points\): a val"
        ):
            w.checkpoint.write_changelogs()
    finally:
        store.close()


def test_with_the_opt_in_the_changelog_is_pickle_and_says_so(monkeypatch, tmp_path):
    w, store = stateful_worker(monkeypatch, tmp_path, "pickle")
    try:
        w.checkpoint.write_changelogs()
        (record, marker) = w.delivery.sent
        assert record[0] == CHANGELOG and record[4] == [(HEADER, b"pickle/1")]
        assert pickle.loads(record[3]).x == 1
        assert marker[4] == [(HEADER, b"pickle/1")]
    finally:
        store.close()


# -- RocksDB keys --------------------------------------------------------------------------
def test_no_key_collides_with_a_stores_metadata(tmp_path):
    path = str(tmp_path / "s")
    keys = [0, None, "", b"", b"\x00kstream:shape", "\x00kstream:shape", (0,), ("k", 0)]
    store = RocksStore(path, ("c", 0), StoreMemory(8), Msgpack(), "op")
    store.set_shape("shape")
    for i, k in enumerate(keys):
        store.put(k, i)
    store.processed(T, 5)
    changes = store.changes()
    store.commit(7)
    store.close()
    store = RocksStore(path, ("c", 0), StoreMemory(8), Msgpack(), "op")
    try:
        assert sorted(store.items(), key=lambda kv: kv[1]) == [(k, i) for i, k in enumerate(keys)]
        assert (store.shape(), store.changelog_next(), store.batch_through()) == (
            "shape",
            7,
            (T, 5),
        )
    finally:
        store.close()
    # a store rebuilt from those changelog records holds the same
    rebuilt = RocksStore(str(tmp_path / "r"), ("c", 0), StoreMemory(8), Msgpack(), "op")
    try:
        rebuilt.apply_changelog(changes, 9)
        assert sorted(rebuilt.items(), key=lambda kv: kv[1]) == [(k, i) for i, k in enumerate(keys)]
        assert rebuilt.batch_through() == (T, 5)
    finally:
        rebuilt.close()


def test_a_store_in_another_format_is_refused(tmp_path):
    path = str(tmp_path / "s")
    store = RocksStore(path, ("c", 0), StoreMemory(8), Msgpack(), "op")
    store.set_shape("shape")
    store.close()
    with pytest.raises(
        FormatError, match=r"holds msgpack/1, op now writes pickle/1.*kstream reset"
    ):
        RocksStore(path, ("c", 0), StoreMemory(8), Pickle(), "op")
    store = RocksStore(path, ("c", 0), StoreMemory(8), Msgpack(), "op")
    store.partition.write([(FORMAT, None)])  # a store an earlier kstream left behind
    store.close()
    with pytest.raises(FormatError, match=r"holds no format \(an earlier kstream's\)"):
        RocksStore(path, ("c", 0), StoreMemory(8), Msgpack(), "op")


def test_a_marker_comes_back_as_it_was_sent():
    tasks = (("lines", 0), ("lines", 1))
    raw = exchange.encode_marker(T, tasks, (0, 1), 5, CODEC)
    assert exchange.decode(raw, CODEC) == (T, exchange.MARKER, [(tasks, (0, 1))], 5)
