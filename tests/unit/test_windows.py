"""Sliding and session windows, against Spark's rules.

A window of length L and slide S emits at batch T when T is a multiple of S and covers
the batches in (T - L, T]. Expectations are Spark's own test cases (PySpark's
WindowFunctionTests, 0.5 s batches), written out by hand, or computed by plain Python
loops over the input batches.
"""

from __future__ import annotations

import logging
import operator
import random
from collections import Counter

import pytest

import kstream
from kstream import ConfigError
from kstream.codec import Msgpack
from kstream.local import LocalRunner
from kstream.ops import windows
from kstream.ops.stateful import BatchContext
from kstream.state.memory import MemoryStore
from tests.unit.queues import dicts, queue
from tests.unit.state_helpers import (
    run_partitioned,
    run_program,
    run_with_fresh_ops,
    store_of,
)
from tests.unit.test_compat import pprint_blocks


def plain(collected):
    return [r for _, r in collected.batches]


def reference(batches, n, interval, length, slide, agg):
    """(T, agg(records of the batches in (T - length, T])) at every T multiple of slide."""
    i_ms, l_ms, s_ms = (round(x * 1000) for x in (interval, length, slide))
    out = []
    for k in range(1, n + 1):
        t = k * i_ms
        if t % s_ms:
            continue
        records = [r for j, b in enumerate(batches, start=1) if t - l_ms < j * i_ms <= t for r in b]
        out.append((t / 1000, agg(records)))
    return out


def sums(records):
    acc: dict = {}
    for k, v in records:
        acc[k] = acc.get(k, 0) + v
    return acc


def random_pairs(seed, n_batches=14, keys="abcde"):
    rng = random.Random(seed)
    return [
        [(rng.choice(keys), rng.randint(1, 4)) for _ in range(rng.choice([0, 0, 1, 2, 6]))]
        for _ in range(n_batches)
    ]


# -- PySpark's WindowFunctionTests (batch interval 0.5 s) -----------------------------------
RANGES = [list(range(n)) for n in range(1, 6)]


def test_spark_window_count():
    app, s = queue(RANGES, 0.5)
    out = s.window(1.5, 0.5).count().collect()
    app.run_batches(8)
    assert plain(out) == [[1], [3], [6], [9], [12], [9], [5], [0]]


def test_spark_count_by_window():
    app, s = queue(RANGES, 0.5)
    out = s.countByWindow(1.5, 0.5).collect()
    app.run_batches(8)
    assert plain(out) == [[1], [3], [6], [9], [12], [9], [5], [0]]


def test_spark_count_by_window_large():
    app, s = queue([list(range(n)) for n in range(1, 7)], 0.5)
    out = s.countByWindow(2.5, 0.5).collect()
    app.run_batches(10)
    assert plain(out) == [[1], [3], [6], [10], [15], [20], [18], [15], [11], [6]]


def test_spark_count_by_value_and_window():
    app, s = queue([list(range(n)) for n in range(1, 7)], 0.5)
    out = s.countByValueAndWindow(2.5, 0.5).collect()
    app.run_batches(11)
    assert [sorted(r) for r in plain(out)] == [
        [(0, 1)],
        [(0, 2), (1, 1)],
        [(0, 3), (1, 2), (2, 1)],
        [(0, 4), (1, 3), (2, 2), (3, 1)],
        [(0, 5), (1, 4), (2, 3), (3, 2), (4, 1)],
        [(0, 5), (1, 5), (2, 4), (3, 3), (4, 2), (5, 1)],
        [(0, 4), (1, 4), (2, 4), (3, 3), (4, 2), (5, 1)],
        [(0, 3), (1, 3), (2, 3), (3, 3), (4, 2), (5, 1)],
        [(0, 2), (1, 2), (2, 2), (3, 2), (4, 2), (5, 1)],
        [(0, 1), (1, 1), (2, 1), (3, 1), (4, 1), (5, 1)],
        [],  # zero counts are dropped (Spark's filter)
    ]


def test_spark_group_by_key_and_window():
    app, s = queue([[("a", i)] for i in range(5)], 0.5)
    out = s.groupByKeyAndWindow(1.5, 0.5).collect()
    app.run_batches(8)
    assert plain(out) == [
        [("a", [0])],
        [("a", [0, 1])],
        [("a", [0, 1, 2])],
        [("a", [1, 2, 3])],
        [("a", [2, 3, 4])],
        [("a", [3, 4])],
        [("a", [4])],
        [],
    ]


def test_spark_reduce_by_key_and_window_with_none_inv_func():
    app, s = queue([list(range(n)) for n in range(1, 7)], 0.5)
    out = (
        s.map(lambda x: (x, 1))
        .reduceByKeyAndWindow(operator.add, None, 5, 1)
        .filter(lambda kv: kv[1] > 0)
        .count()
        .collect()
    )
    app.run_batches(12)
    assert plain(out) == [[2], [4], [6], [6], [6], [6]]
    assert [t for t, _ in out.batches] == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]


def test_spark_reduce_by_invalid_window():
    _app, s = queue([range(3), range(5)], 0.5)
    with pytest.raises(ValueError):
        s.reduceByKeyAndWindow(None, None, 0.1, 0.1)
    with pytest.raises(ValueError):
        s.reduceByKeyAndWindow(operator.add, None, 1, 0.1)


# -- the window rule, first batches and draining ---------------------------------------------
def test_window_emits_only_at_slides_and_drains_after_the_input():
    app, s = queue([["a"], ["b"], ["c", "d"], ["e"]])
    out = s.window(3, 2).collect()
    app.run_batches(8)
    # at 1, 3, 5, 7 no result at all; partial window at 2; empty windows after the input
    assert out.batches == [
        (2.0, ["a", "b"]),
        (4.0, ["b", "c", "d", "e"]),
        (6.0, ["e"]),  # (3, 6]: batch 4
        (8.0, []),
    ]


@pytest.mark.parametrize(
    ("length", "slide"), [(1, 1), (3, 1), (3, 2), (2, 4), (4, 2), (6, 3), (5, 5)]
)
def test_window_and_counts_match_a_plain_loop(length, slide):
    batches = [[f"r{i}.{j}" for j in range(i % 4)] for i in range(12)]
    app, s = queue(batches)
    w = s.window(length, slide).collect()
    c = s.count_by_window(length, slide).collect()
    r = s.map(len).reduce_by_window(operator.add, None, length, slide).collect()
    ri = s.map(len).reduce_by_window(operator.add, operator.sub, length, slide).collect()
    app.run_batches(18)
    assert w.batches == reference(batches, 18, 1, length, slide, list)
    assert c.batches == reference(batches, 18, 1, length, slide, lambda rs: [len(rs)])
    sizes = [[len(x) for x in b] for b in batches]
    by_hand = reference(sizes, 18, 1, length, slide, lambda rs: [sum(rs)] if rs else [])
    assert r.batches == by_hand
    assert ri.batches == spark_sums_with_inverse(sizes, 18, length, slide)


def spark_sums_with_inverse(batches, n, length, slide):
    """Spark's reduceByWindow(+, -): reduceByKeyAndWindow over (1, x), whose key stays
    once a window held it: nothing until a window holds a record, then the window's sum
    every slide, 0 once its records have left (1 s batches)."""
    out, seen = [], False
    for t, records in reference(batches, n, 1, length, slide, list):
        seen = seen or bool(records)
        out.append((t, [sum(records)] if seen else []))
    return out


def test_empty_windows_of_the_whole_stream():
    app, s = queue([[], [], [5], [], [], []])
    w = s.window(2).collect()
    c = s.count_by_window(2).collect()
    r = s.reduce_by_window(operator.add, None, 2).collect()
    ri = s.reduce_by_window(operator.add, operator.sub, 2).collect()
    app.run_batches(7)
    assert plain(w) == [[], [], [5], [5], [], [], []]
    assert plain(c) == [[0], [0], [1], [1], [0], [0], [0]]
    assert plain(r) == [[], [], [5], [5], [], [], []]
    assert plain(ri) == [[], [], [5], [5], [0], [0], [0]]  # Spark's: subtracted to 0


def test_reduce_by_window_with_inv_fn_keeps_emitting_once_its_window_empties():
    app, s = queue([[1, 2], [3], [], [], [4], [], [], []])
    out = s.reduceByWindow(operator.add, operator.sub, 2, 1).collect()
    counts = s.countByWindow(2, 1).collect()
    app.run_batches(9)
    assert plain(out) == [[3], [6], [3], [0], [4], [4], [0], [0], [0]]
    assert plain(counts) == [[2], [3], [1], [0], [1], [1], [0], [0], [0]]


def test_slide_defaults_to_the_batch_interval():
    app, s = queue([[1], [2], [3]], 0.5)
    out = s.count_by_window(1).collect()
    app.run_batches(4)
    assert out.batches == [(0.5, [1]), (1.0, [2]), (1.5, [2]), (2.0, [1])]


# -- windows by key ---------------------------------------------------------------------------
@pytest.mark.parametrize(("length", "slide"), [(3, 1), (4, 2), (3, 2), (2, 3), (6, 3)])
@pytest.mark.parametrize("seed", [1, 2])
def test_reduce_by_key_and_window_with_and_without_inv_fn(length, slide, seed):
    batches = random_pairs(seed)
    app, s = queue(batches)
    recomputed = s.reduce_by_key_and_window(operator.add, None, length, slide).collect()
    incremental = s.reduce_by_key_and_window(
        operator.add, operator.sub, length, slide, filter_fn=lambda kv: kv[1] != 0
    ).collect()
    app.run_batches(20)
    expected = reference(batches, 20, 1, length, slide, sums)
    assert dicts(recomputed) == expected
    assert dicts(incremental) == expected


@pytest.mark.parametrize(("length", "slide"), [(3, 1), (2, 2), (3, 2), (2, 3)])
def test_with_inv_fn_keys_whose_value_returns_to_zero_stay(length, slide):
    batches = random_pairs(4)
    app, s = queue(batches)
    out = s.reduceByKeyAndWindow(operator.add, operator.sub, length, slide).collect()
    app.run_batches(20)
    # Scala Spark: once a key is in a window, later windows keep it (0 when it has no
    # values left), as no filter function removes it
    seen: set = set()
    expected = []
    for t, window in reference(batches, 20, 1, length, slide, sums):
        seen |= set(window)
        expected.append((t, {k: window.get(k, 0) for k in seen}))
    assert dicts(out) == expected
    assert dicts(out)[-1][1] == dict.fromkeys(seen, 0)


def test_filter_fn_keeps_only_the_pairs_it_accepts():
    batches = [[("a", 1), ("b", 5)], [("a", 1)], [], [("b", 1)]]
    app, s = queue(batches)
    big = s.reduce_by_key_and_window(operator.add, None, 2, filter_fn=lambda kv: kv[1] > 1)
    out = big.collect()
    zeros = s.reduce_by_key_and_window(operator.add, operator.sub, 2, 1, None, lambda kv: kv[1])
    out2 = zeros.collect()
    app.run_batches(6)
    assert dicts(out) == [
        (1.0, {"b": 5}),
        (2.0, {"a": 2, "b": 5}),
        (3.0, {}),
        (4.0, {}),
        (5.0, {}),
        (6.0, {}),
    ]
    assert dicts(out2) == [
        (1.0, {"a": 1, "b": 5}),
        (2.0, {"a": 2, "b": 5}),
        (3.0, {"a": 1}),
        (4.0, {"b": 1}),
        (5.0, {"b": 1}),
        (6.0, {}),
    ]


def test_count_by_value_and_window_and_group_by_key_and_window_match_a_plain_loop():
    rng = random.Random(3)
    batches = [[rng.choice("xyz") for _ in range(rng.choice([0, 1, 4]))] for _ in range(12)]
    app, s = queue(batches)
    counts = s.count_by_value_and_window(4, 2, num_partitions=3).collect()
    pairs = s.map(lambda w: (w, len(w)))
    groups = pairs.group_by_key_and_window(3, 1).collect()
    app.run_batches(16)
    assert dicts(counts) == reference(batches, 16, 1, 4, 2, lambda rs: dict(Counter(rs)))

    def grouped(records):
        out: dict = {}
        for w in records:
            out.setdefault(w, []).append(len(w))
        return out

    assert dicts(groups) == reference(batches, 16, 1, 3, 1, grouped)


def test_window_of_a_window_follows_its_slides():
    batches = [[1], [2], [3], [4], [5], [6]]
    app, s = queue(batches)
    inner = s.window(2, 2)  # results at 2, 4, 6, ...: batches (T-2, T]
    out = inner.count_by_window(4, 4).collect()  # inner's results at (T-4, T]
    app.run_batches(9)
    # at 4: inner results of 2 and 4 -> 4 records; at 8: inner 6 and 8 -> 2 records
    assert out.batches == [(4.0, [4]), (8.0, [2])]
    with pytest.raises(ConfigError, match="slide of the windowed stream"):
        inner.window(3)


# -- state stays bounded, and lives only in the store ------------------------------------------
def test_a_thousand_batches_keep_the_store_bounded():
    rng = random.Random(0)
    batches = [[rng.choice("abcdefgh") for _ in range(rng.randint(0, 5))] for _ in range(1000)]
    app, s = queue(batches)
    counts = s.count_by_window(10, 2).collect()
    by_key = s.map(lambda w: (w, 1)).reduce_by_key_and_window(
        operator.add, operator.sub, 10, 2, filter_fn=lambda kv: kv[1] != 0
    )
    keyed = by_key.collect()
    grouped = s.map(lambda w: (w, 1)).group_by_key_and_window(6, 3).collect()
    sizes = []
    runner = LocalRunner(app)
    for _ in range(10):
        runner.run_virtual(100)
        sizes.append(
            (
                len(store_of(runner, "count_by_window")),
                len(store_of(runner, "reduce_by_key_and_window")),
                len(store_of(runner, "group_by_key_and_window")),
            )
        )
    # batches kept: at most the window's and the slide's worth, plus bookkeeping; keys: 8
    assert all(c <= 10 + 2 + 1 and k <= 10 + 2 + 1 + 8 and g <= 6 + 3 + 1 for c, k, g in sizes)
    assert counts.batches[-1] == (1000.0, [sum(len(b) for b in batches[990:])])
    assert dicts(keyed)[-1][1] == dict(Counter(w for b in batches[990:] for w in b))
    assert len(grouped.batches) == 333


def test_windows_keep_nothing_outside_their_store():
    batches = random_pairs(6)

    def build():
        app, s = queue(batches)
        outs = [
            s.window(3, 2).collect(),
            s.count_by_window(4, 2).collect(),
            s.map(lambda kv: kv[1]).reduce_by_window(operator.add, operator.sub, 3, 1).collect(),
            s.reduce_by_key_and_window(operator.add, operator.sub, 3, 1).collect(),
            s.reduce_by_key_and_window(operator.add, None, 4, 2).collect(),
            s.group_by_key_and_window(2).collect(),
            s.map(lambda kv: kv[0]).count_by_value_and_window(3, 3).collect(),
            s.reduce_by_key_and_session(operator.add, 2).collect(),
        ]
        return app, outs

    app1, outs1 = build()
    app1.run_batches(20)
    app2, outs2 = build()
    run_with_fresh_ops(app2, 20)

    def norm(c):
        return [(t, sorted(r, key=repr)) for t, r in c.batches]

    assert [norm(c) for c in outs1] == [norm(c) for c in outs2]


@pytest.mark.parametrize(
    "make",
    [
        lambda: windows.ReduceByKeyAndWindow(operator.add, operator.sub, None, 3000, 1000),
        lambda: windows.ReduceByKeyAndWindow(operator.add, None, None, 4000, 2000),
        lambda: windows.CountByValueAndWindow(3000, 1000),
        lambda: windows.GroupByKeyAndWindow(2000, 1000),
        lambda: windows.ReduceByKeyAndSession(operator.add, 2000, "join"),
    ],
)
def test_keyed_windows_over_several_partitions_equal_one(make):
    batches = random_pairs(8)
    if isinstance(make(), windows.CountByValueAndWindow):
        batches = [[k for k, _ in b] for b in batches]

    def run(partitions):
        return [
            (t, None if r is None else sorted(r, key=repr))
            for t, r in run_partitioned(make(), batches, 20, 1000, partitions)
        ]

    assert run(3) == run(1)


# -- sessions ---------------------------------------------------------------------------------
def test_sessions_close_after_the_gap_and_match_a_plain_loop():
    batches = [
        [("a", 1)],
        [("a", 2), ("b", 1)],
        [],
        [("a", 4)],
        [],
        [],
        [("b", 1), ("b", 1)],
        [],
        [("b", 1)],
    ]
    app, s = queue(batches)
    out = s.reduce_by_key_and_session(operator.add, 2).collect()
    app.run_batches(13)
    # gap 2 s: a's records at 1, 2, 4 are one session (4 - 2 <= 2), closed at 6;
    # b at 2 closes at 4; b at 7 and 9 is one session, closed at 11
    assert [(t, r) for t, r in out.batches if r] == [
        (4.0, [("b", (2.0, 2.0, 1))]),
        (6.0, [("a", (1.0, 4.0, 7))]),
        (11.0, [("b", (7.0, 9.0, 3))]),
    ]
    assert len(out.batches) == 13  # an (empty) result every batch


@pytest.mark.parametrize("gap", [1, 2, 3, 5])
def test_sessions_match_a_plain_loop(gap):
    batches = random_pairs(12, n_batches=30, keys="abc")
    for b in batches[::4]:
        b.clear()  # some longer gaps
    app, s = queue(batches)
    out = s.reduceByKeyAndSession(operator.add, gap).collect()
    app.run_batches(40)

    expected: dict = {float(t): {} for t in range(1, 41)}
    per_key: dict = {}
    for i, b in enumerate(batches, start=1):
        for k, v in b:
            per_key.setdefault(k, {}).setdefault(i, 0)
            per_key[k][i] += v
    for k, per_batch in per_key.items():
        runs: list = []
        for t in sorted(per_batch):
            if runs and t - runs[-1][-1] <= gap:
                runs[-1].append(t)
            else:
                runs.append([t])
        for run in runs:
            value = sum(per_batch[t] for t in run)
            expected[float(run[-1] + gap)][k] = (float(run[0]), float(run[-1]), value)
    assert dicts(out) == list(expected.items())


def test_a_gap_of_one_interval_joins_consecutive_batches_only():
    app, s = queue([[("a", 1)], [("a", 1)], [], [("a", 1)]])
    out = s.reduce_by_key_and_session(operator.add, 1).collect()
    app.run_batches(6)
    assert [(t, r) for t, r in out.batches if r] == [
        (3.0, [("a", (1.0, 2.0, 2))]),
        (5.0, [("a", (4.0, 4.0, 1))]),
    ]


def session_op(late, dead_letters=None):
    """The operator, and a function running a batch with it over one store; the late
    records go to `dead_letters` (a worker's), if given."""
    op = windows.ReduceByKeyAndSession(operator.add, 2000, late)
    context = BatchContext(MemoryStore(Msgpack(), op.kind), late=dead_letters)
    return op, lambda batch, t: op.apply_in(context, [batch], t)


def test_late_records_join_by_default():
    op, run = session_op("join")
    assert run([("a", 1)], 5000) == []
    # an older batch (a replay) arrives after batch 5: a's record of 3 joins a's session;
    # b's (late, no open session) starts one at 3, whose gap has passed already: it closes
    assert run([("a", 10), ("b", 1)], 3000) == [("b", (3.0, 3.0, 1))]
    assert run([], 6000) == []
    assert run([], 7000) == [("a", (3.0, 5.0, 11))]
    assert op.late_records == 0


@pytest.mark.parametrize("late", ["drop", "dlq"])
def test_late_records_dropped_and_counted(late, caplog):
    op, run = session_op(late)
    run([("a", 1)], 5000)
    with caplog.at_level(logging.WARNING, logger="kstream.ops.windows"):
        assert run([("a", 10), ("b", 1)], 3000) == []
    assert op.late_records == 2
    assert run([("a", 2)], 6000) == []  # in order again: not late
    assert run([], 8000) == [("a", (5.0, 6.0, 3))]
    warned = [r for r in caplog.records if "late record" in r.getMessage()]
    assert (len(warned) == 1) == (late == "dlq")


def test_late_dlq_hands_the_late_records_over_when_a_worker_collects_them(caplog):
    rejected: list = []  # what a worker gives; it sends them to the dead-letter topic
    op, run = session_op("dlq", rejected)
    run([("a", 1)], 5000)
    with caplog.at_level(logging.WARNING, logger="kstream.ops.windows"):
        assert run([("a", 10), ("b", 1)], 3000) == []
    assert [record for record, _ in rejected] == [("a", 10), ("b", 1)]
    why = dict(rejected)
    assert "older than its key's open session" in why[("a", 10)]
    assert "older than the newest batch run" in why[("b", 1)]
    assert op.late_records == 2
    assert not [r for r in caplog.records if "late record" in r.getMessage()]


def test_records_in_batch_order_are_never_late():
    app, s = queue([[("a", 1)], [("a", 1)], [("a", 1)]])
    stream = s.reduce_by_key_and_session(operator.add, 1, late="drop")
    out = stream.collect()
    app.run_batches(5)
    assert [(t, r) for t, r in out.batches if r] == [(4.0, [("a", (1.0, 3.0, 3))])]
    (op,) = [n.op for n in app.nodes if n.op.kind == "reduce_by_key_and_session"]
    assert op.late_records == 0


# -- configuration errors ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("build", "names"),
    [
        (lambda s: s.window(2.5), "length=2.5"),
        (lambda s: s.window(2, 1.5), "slide=1.5"),
        (lambda s: s.window(0), "length=0"),
        (lambda s: s.window(-2), "length=-2"),
        (lambda s: s.count_by_window(3, 0.5), "slide=0.5"),
        (lambda s: s.reduce_by_window(operator.add, None, 1.2), "length=1.2"),
        (lambda s: s.reduce_by_window(operator.add), "length"),
        (lambda s: s.reduce_by_window(None, None, 2), "fn=None"),
        (lambda s: s.reduce_by_key_and_window(operator.add, 3, 2), "inv_fn=3"),
        (lambda s: s.reduce_by_key_and_window(operator.add, None, 2, filter_fn=1), "filter_fn"),
        (lambda s: s.reduce_by_key_and_window(operator.add, None, "2"), "length='2'"),
        (lambda s: s.count_by_value_and_window(3, 7.5), "slide=7.5"),
        (lambda s: s.group_by_key_and_window(1.5), "length=1.5"),
        (lambda s: s.reduce_by_key_and_session(operator.add, 0.5), "gap=0.5"),
        (lambda s: s.reduce_by_key_and_session(operator.add, 2, late="later"), "late='later'"),
    ],
)
def test_config_errors_name_the_argument(build, names):
    _app, s = queue([])
    with pytest.raises(ConfigError) as e:
        build(s)
    assert names in str(e.value)


def test_window_error_mentions_the_interval():
    _app, s = queue([], 2.0)
    with pytest.raises(ConfigError, match=r"multiple of the batch interval \(2 s\)"):
        s.window(3)


# -- Spark's windowed word count, only its imports changed -------------------------------------
WINDOWED_WORD_COUNT = """\
import sys

from kstream.compat import SparkContext
from kstream.compat import StreamingContext

sc = SparkContext(appName="PythonStreamingWindowedNetworkWordCount")
ssc = StreamingContext(sc, 2)
ssc.checkpoint("checkpoint")

lines = ssc.socketTextStream(sys.argv[1], int(sys.argv[2]))
pairs = lines.flatMap(lambda line: line.split(" ")).map(lambda word: (word, 1))
windowedWordCounts = pairs.reduceByKeyAndWindow(lambda x, y: x + y, lambda x, y: x - y, 6, 4)
windowedWordCounts.pprint()
lines.window(6, 4).count().pprint()
lines.countByWindow(6, 4).pprint()

ssc.start()
ssc.awaitTermination()
"""


def test_spark_windowed_word_count(tmp_path, line_server):
    words = {"('to', 2)", "('be', 2)", "('or', 1)", "('not', 1)"}
    zeros = {"('to', 0)", "('be', 0)", "('or', 0)", "('not', 0)"}

    def blocks(out):
        return [(stamp, set(r)) for stamp, r in pprint_blocks(out)]

    def done(out):
        return any(r == zeros for _, r in blocks(out))

    out, err = run_program(
        tmp_path,
        WINDOWED_WORD_COUNT,
        ["localhost", str(line_server.port)],
        lambda: line_server.send(b"to be or not to be\n", timeout=15),
        done,
        timeout=30,
    )
    assert done(out), out + err
    got = blocks(out)
    # only at slides: every 4 s of epoch time (local seconds keep that, 60 = 15 * 4)
    assert all(int(stamp[-2:]) % 4 == 0 for stamp, _ in got), out
    # three outputs per slide, in the program's order: pairs, window count, countByWindow
    assert len(got) % 3 == 0, out
    slides = [got[i : i + 3] for i in range(0, len(got), 3)]
    assert all(a[0] == b[0] == c[0] for a, b, c in slides), out
    pairs_seen = [a[1] for a, _, _ in slides]
    counts_seen = [(b[1], c[1]) for _, b, c in slides]
    first = pairs_seen.index(words)
    # before the line: no pairs and empty windows; then the counts for one or two slides
    # (a 6 s window at a 4 s slide holds a batch once or twice); then the keys stay at 0
    assert all(p == set() for p in pairs_seen[:first]), out
    assert all(c == ({"0"}, {"0"}) for c in counts_seen[:first]), out
    with_words = [p for p in pairs_seen[first:] if p == words]
    assert len(with_words) in (1, 2), out
    rest = pairs_seen[first + len(with_words) :]
    assert rest and all(p == zeros for p in rest), out
    assert counts_seen[first : first + len(with_words)] == [({"1"}, {"1"})] * len(with_words)
    assert all(c == ({"0"}, {"0"}) for c in counts_seen[first + len(with_words) :]), out


def test_an_idle_gap_is_skipped_only_after_the_windows_have_drained(monkeypatch, tmp_path):
    # an hour-old record, then one an hour later: the source stage closes every batch up
    # to the emission of the last window holding the first record before it skips the gap
    from tests.unit.offline import msg, offline_worker

    app = kstream.App("w", batch_interval=1.0, state_dir=str(tmp_path))
    app.stream("lines").map(lambda w: (w, 1)).reduce_by_key_and_window(
        operator.add, None, 120, 120
    ).to("out")
    w = offline_worker(app, {"lines": 1, "out": 1})
    stage = w.stages[0]
    stage.assign([("lines", 0)])
    t0 = 3_600_000  # a multiple of the slide
    stage.ingest("lines", [msg("lines", 0, 0, b"a", ts=t0 + 500)], 0)
    stage.ingest("lines", [msg("lines", 0, 1, b"b", ts=t0 + 3_600_000)], 0)
    closed = [t for t, _ in stage.due(0)]
    assert t0 + 120_000 in closed  # the one window holding a: 119 empty batches after it
    assert len(closed) < 3600  # the rest of the gap is skipped
