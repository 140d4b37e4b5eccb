"""Outputs: pprint (Spark's format), collect, foreach_batch / foreachRDD."""

from __future__ import annotations

import datetime
import logging
import operator
import time

import pytest

import kstream
from kstream.errors import ConfigError
from kstream.ops.sinks import ForeachBatch

DASHES = "-------------------------------------------"  # 43, as PySpark prints


def spark_header(seconds):
    # PySpark prints "Time: %s" % datetime.fromtimestamp(seconds) between two dash lines.
    return [DASHES, f"Time: {datetime.datetime.fromtimestamp(seconds)}", DASHES]


def test_pprint_prints_a_header_and_the_records(capsys):
    app = kstream.App("t", batch_interval=1.0)
    app.queue_stream([["a", "b"], [], [("k", 1)]]).pprint()
    app.run_batches(3)
    out = capsys.readouterr().out
    expected = [
        *spark_header(1),
        "a",
        "b",
        "",
        *spark_header(2),
        "",
        *spark_header(3),
        "('k', 1)",
        "",
    ]
    assert out.splitlines() == expected


def test_pprint_shows_the_first_ten_then_dots(capsys):
    app = kstream.App("t", batch_interval=1.0)
    app.queue_stream([list(range(25))]).pprint()
    app.run_batches(1)
    lines = capsys.readouterr().out.splitlines()
    assert lines == [*spark_header(1), *[str(i) for i in range(10)], "...", ""]


def test_pprint_of_exactly_ten_records_has_no_dots(capsys):
    app = kstream.App("t", batch_interval=1.0)
    app.queue_stream([list(range(10))]).pprint()
    app.run_batches(1)
    lines = capsys.readouterr().out.splitlines()
    assert lines == [*spark_header(1), *[str(i) for i in range(10)], ""]


def test_pprint_with_num(capsys):
    app = kstream.App("t", batch_interval=1.0)
    s = app.queue_stream([["x", "y", "z"]])
    s.pprint(2)
    app.run_batches(1)
    assert capsys.readouterr().out.splitlines() == [*spark_header(1), "x", "y", "...", ""]


def test_pprint_of_a_word_count(capsys):
    app = kstream.App("t", batch_interval=1.0)
    lines = app.queue_stream([["b a b"]])
    lines.flat_map(str.split).map(lambda w: (w, 1)).reduce_by_key(operator.add).pprint()
    app.run_batches(1)
    printed = capsys.readouterr().out.splitlines()
    assert printed[:3] == spark_header(1)
    assert sorted(printed[3:5]) == ["('a', 1)", "('b', 2)"]
    assert printed[5:] == [""]


def test_pprint_returns_nothing():
    app = kstream.App("t", batch_interval=1.0)
    assert app.queue_stream([]).pprint() is None


def test_collect_records_and_batches():
    app = kstream.App("t", batch_interval=2.0)
    out = app.queue_stream([[1, 2], [], [3]]).collect()
    assert out.batches == []
    app.run_batches(3)
    assert out.batches == [(2.0, [1, 2]), (4.0, []), (6.0, [3])]
    assert out.records() == [1, 2, 3]


def test_collect_holds_its_own_copy_of_each_batch():
    app = kstream.App("t", batch_interval=1.0)
    s = app.queue_stream([[3, 1, 2]])
    out = s.collect()

    def mutate(records):
        records.clear()

    s.foreach_batch(mutate)
    app.run_batches(1)
    assert out.batches == [(1.0, [3, 1, 2])]


def test_foreach_batch_with_records_only_and_alias():
    seen_snake, seen_camel = [], []
    app = kstream.App("t", batch_interval=1.0)
    s = app.queue_stream([["a"], [], ["b", "c"]])
    s.foreach_batch(lambda records: seen_snake.append(list(records)))
    s.foreachRDD(lambda rdd: seen_camel.append(sorted(rdd)))
    app.run_batches(4)
    assert seen_snake == [["a"], [], ["b", "c"], []]
    assert seen_camel == [["a"], [], ["b", "c"], []]


def test_foreach_batch_with_time_and_records_and_alias():
    seen_snake, seen_camel = [], []

    def record(time, records):
        seen_snake.append((time, list(records)))

    app = kstream.App("t", batch_interval=0.25)
    s = app.queue_stream([[1], [2, 3]])
    s.foreach_batch(record)
    s.foreachRDD(lambda t, rdd: seen_camel.append((t, sum(rdd))))
    app.run_batches(3)
    assert seen_snake == [(0.25, [1]), (0.5, [2, 3]), (0.75, [])]
    assert seen_camel == [(0.25, 1), (0.5, 5), (0.75, 0)]


def test_foreach_batch_with_a_callable_object():
    class Sink:
        def __init__(self):
            self.got = []

        def __call__(self, records):
            self.got.append(len(records))

    sink = Sink()
    app = kstream.App("t", batch_interval=1.0)
    app.queue_stream([[1, 2, 3], []]).foreach_batch(sink)
    app.run_batches(2)
    assert sink.got == [3, 0]


def test_foreach_batch_returns_nothing():
    app = kstream.App("t", batch_interval=1.0)
    assert app.queue_stream([]).foreach_batch(lambda r: None) is None


def test_an_error_in_a_sink_surfaces_from_run_batches():
    app = kstream.App("t", batch_interval=1.0)
    app.queue_stream([[0]]).foreach_batch(lambda records: [1 / r for r in records])
    with pytest.raises(ZeroDivisionError):
        app.run_batches(1)  # after its retries (which wait on the virtual clock: not at all)


class Flaky:
    """Raises `error` on its first `failures` calls, then records what it is given."""

    def __init__(self, failures: int, error: Exception):
        self.failures = failures
        self.error = error
        self.calls = 0
        self.written: list[list] = []

    def __call__(self, records):
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        self.written.append(list(records))


def test_foreach_batch_retries_a_failing_function_then_goes_on(caplog):
    write = Flaky(2, ConnectionError("connection refused"))
    app = kstream.App("t", batch_interval=1.0)
    app.queue_stream([["a", "b"], ["c"]]).foreach_batch(write.__call__, retries=3, backoff=1.0)
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, "kstream"):
        app.run_batches(2)
    assert time.monotonic() - started < 0.5  # the virtual clock does not wait
    assert write.written == [["a", "b"], ["c"]]
    assert write.calls == 4
    retries = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [r.getMessage() for r in retries] == [
        f"foreach_batch-2 ({__name__}.Flaky.__call__) raised ConnectionError: connection refused "
        f"(attempt {n} of 4); trying again in {delay}s"
        for n, delay in [(1, 1), (2, 2)]
    ]


def test_foreach_batch_retries_every_exception_then_raises_the_last():
    write = Flaky(10, ValueError("bad"))
    app = kstream.App("t", batch_interval=1.0)
    app.queue_stream([["a"]]).foreach_batch(write, retries=2)
    with pytest.raises(ValueError, match="bad"):
        app.run_batches(1)
    assert write.calls == 3 and write.written == []


def test_foreach_batch_backoff_doubles_up_to_a_bound():
    write = Flaky(10, TimeoutError("slow"))
    sink = ForeachBatch(write, retries=8, backoff=0.5)
    waited: list[float] = []
    sink.sleep = waited.append
    with pytest.raises(TimeoutError):
        sink.apply([["x"]], 1000)
    assert waited == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]


def test_foreach_batch_without_retries_raises_at_once():
    write = Flaky(1, OSError("down"))
    app = kstream.App("t", batch_interval=1.0)
    app.queue_stream([["a"]]).foreach_batch(write, retries=0)
    with pytest.raises(OSError):
        app.run_batches(1)
    assert write.calls == 1


@pytest.mark.parametrize(
    ("setting", "value"),
    [("retries", -1), ("retries", 1.5), ("retries", True), ("backoff", -0.1), ("backoff", "1")],
)
def test_foreach_batch_retry_settings_are_checked(setting, value):
    s = kstream.App("t").queue_stream([])
    with pytest.raises(ConfigError, match=f"foreach_batch.*{setting}="):
        s.foreach_batch(print, **{setting: value})
