"""Local sources: queue streams on the virtual clock, sockets on the wall clock."""

from __future__ import annotations

import threading
import time

import pytest

import kstream


# -- queue streams --------------------------------------------------------------------
def test_queue_stream_gives_one_list_per_batch_then_empty_batches():
    app = kstream.App("t", batch_interval=1.0)
    out = app.queue_stream([["a"], [], ["b", "c"]]).collect()
    app.run_batches(5)
    assert out.batches == [(1.0, ["a"]), (2.0, []), (3.0, ["b", "c"]), (4.0, []), (5.0, [])]


def test_queue_stream_accepts_any_iterables():
    app = kstream.App("t", batch_interval=1.0)
    out = app.queue_stream(iter([(1, 2), range(3), {"k": 0}])).collect()
    app.run_batches(3)
    assert out.batches == [(1.0, [1, 2]), (2.0, [0, 1, 2]), (3.0, ["k"])]


def test_queue_stream_of_nothing():
    app = kstream.App("t", batch_interval=1.0)
    out = app.queue_stream([]).collect()
    app.run_batches(2)
    assert out.batches == [(1.0, []), (2.0, [])]


def test_queue_stream_all_at_once():
    app = kstream.App("t", batch_interval=1.0)
    out = app.queue_stream([[1, 2], [], [3]], one_at_a_time=False).collect()
    app.run_batches(3)
    assert out.batches == [(1.0, [1, 2, 3]), (2.0, []), (3.0, [])]


def test_queue_stream_default_after_the_queue_runs_out():
    app = kstream.App("t", batch_interval=1.0)
    out = app.queue_stream([["x"], []], default=["d1", "d2"]).collect()
    app.run_batches(4)
    assert out.batches == [(1.0, ["x"]), (2.0, []), (3.0, ["d1", "d2"]), (4.0, ["d1", "d2"])]


def test_queue_stream_default_batches_are_independent_copies():
    app = kstream.App("t", batch_interval=1.0)
    s = app.queue_stream([], default=[1])
    s.foreach_batch(lambda records: records.append(99))
    out = s.collect()
    app.run_batches(3)
    assert [records[0] for _, records in out.batches] == [1, 1, 1]


def test_queue_stream_all_at_once_with_default():
    app = kstream.App("t", batch_interval=1.0)
    out = app.queue_stream([["a"], ["b"]], one_at_a_time=False, default=["z"]).collect()
    app.run_batches(3)
    assert out.batches == [(1.0, ["a", "b"]), (2.0, ["z"]), (3.0, ["z"])]


def test_two_queue_streams_advance_together():
    app = kstream.App("t", batch_interval=1.0)
    a = app.queue_stream([[1], [2]]).collect()
    b = app.queue_stream([[10], [20], [30]]).collect()
    app.run_batches(3)
    assert a.batches == [(1.0, [1]), (2.0, [2]), (3.0, [])]
    assert b.batches == [(1.0, [10]), (2.0, [20]), (3.0, [30])]


def test_queue_stream_on_the_wall_clock():
    app = kstream.App("t", batch_interval=0.02)
    got: list[tuple[float, list[int]]] = []

    def sink(t, records):
        got.append((t, list(records)))
        if len(got) == 4:
            app.stop()

    app.queue_stream([[1], [2, 3], [4]]).foreach_batch(sink)
    app.run(timeout=10)
    assert [r for _, r in got] == [[1], [2, 3], [4], []]
    times = [round(t * 1000) for t, _ in got]
    assert all(t % 20 == 0 for t in times)
    assert times == [times[0] + 20 * k for k in range(4)]


# -- sockets --------------------------------------------------------------------------
def test_socket_stream_reads_lines_by_arrival(line_server):
    app = kstream.App("t", batch_interval=0.02)
    got: list[tuple[float, list[str]]] = []
    seen_three = threading.Event()

    def sink(t, records):
        if records:
            got.append((t, list(records)))
        seen = sum(len(r) for _, r in got)
        if seen >= 3:
            seen_three.set()
        if seen >= 4:
            app.stop()

    app.socket_text_stream("127.0.0.1", line_server.port).foreach_batch(sink)
    runner = threading.Thread(target=app.run, kwargs={"timeout": 15}, daemon=True)
    runner.start()
    try:
        line_server.send(b"hello world\r\nsecond line\npar")
        time.sleep(0.05)
        line_server.send(b"tial\n")
        assert seen_three.wait(10)
        line_server.send(b"later\n")
        runner.join(15)
    finally:
        app.stop()
        runner.join(5)
    assert not runner.is_alive()
    lines = [line for _, batch in got for line in batch]
    assert lines == ["hello world", "second line", "partial", "later"]
    # "later" was sent after an earlier batch had closed, so it is in a later batch.
    assert got[-1][1] == ["later"]
    assert got[-1][0] > got[0][0]


def test_socket_stream_refuses_run_batches(line_server):
    app = kstream.App("t", batch_interval=1.0)
    app.socket_text_stream("127.0.0.1", line_server.port).collect()
    with pytest.raises(kstream.ConfigError, match="socket"):
        app.run_batches(1)


# -- Kafka sources need a worker ------------------------------------------------------
def test_run_batches_on_a_kafka_app_is_a_config_error():
    app = kstream.App("t", batch_interval=1.0)
    app.stream("lines").flat_map(str.split).collect()
    with pytest.raises(kstream.ConfigError, match="kstream worker"):
        app.run_batches(1)


def test_run_on_a_kafka_app_is_a_config_error():
    app = kstream.App("t", batch_interval=1.0)
    app.stream(["a", "b"], keyed=True).pprint()
    with pytest.raises(kstream.ConfigError):
        app.run(timeout=0.1)


def test_kafka_and_queue_sources_do_not_mix():
    app = kstream.App("t", batch_interval=1.0)
    k = app.stream("lines")
    q = app.queue_stream([["x"]])
    k.union(q).collect()
    with pytest.raises(kstream.ConfigError, match="not both"):
        app.run_batches(1)
