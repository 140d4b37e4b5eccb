"""State by key: update_state_by_key and map_with_state, against Spark's rules.

Expectations are written out by hand from Spark's documented rules (several are Spark's
own test cases) or computed by plain Python loops over the input batches.
"""

from __future__ import annotations

import operator
import random

import pytest

from kstream import ConfigError, StateSpec
from kstream.ops import state_ops
from tests.unit.queues import dicts, queue
from tests.unit.state_helpers import pairs_of, run_partitioned, run_program, run_with_fresh_ops
from tests.unit.test_compat import pprint_blocks


def total(values, state):
    return sum(values) + (state or 0)


def reference_update_state(batches, fn, n, initial=()):
    """Spark's rule as a loop: fn for every key with new values or a state."""
    state = dict(initial)
    out = []
    for i in range(n):
        groups: dict = {}
        for k, v in batches[i] if i < len(batches) else []:
            groups.setdefault(k, []).append(v)
        new = {}
        for k in list(state) + [k for k in groups if k not in state]:
            s = fn(groups.get(k, []), state.get(k))
            if s is not None:
                new[k] = s
        state = new
        out.append((float(i + 1), dict(state)))
    return out


def random_pairs(seed, n_batches=15, keys="abcdef"):
    rng = random.Random(seed)
    return [
        [(rng.choice(keys), rng.randint(-3, 5)) for _ in range(rng.choice([0, 0, 1, 3, 8]))]
        for _ in range(n_batches)
    ]


# -- update_state_by_key ---------------------------------------------------------------
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_running_sum_matches_a_plain_loop(seed):
    batches = random_pairs(seed)
    app, s = queue(batches)
    out = s.update_state_by_key(total).collect()
    app.run_batches(20)  # 5 empty batches after the input: the state stays
    assert dicts(out) == reference_update_state(batches, total, 20)


def test_every_key_is_emitted_every_batch_including_empty_ones():
    app, s = queue([[("a", 1), ("a", 1), ("b", 1)], [], [("b", 5)]])
    out = s.update_state_by_key(total).collect()
    app.run_batches(4)
    assert dicts(out) == [
        (1.0, {"a": 2, "b": 1}),
        (2.0, {"a": 2, "b": 1}),
        (3.0, {"a": 2, "b": 6}),
        (4.0, {"a": 2, "b": 6}),
    ]


def test_spark_update_state_by_key_with_a_list_state_changed_in_place():
    # Spark's test_update_state_by_key: each batch's output is that batch's state, even
    # though the function extends the same list object.
    def updater(vs, s):
        if not s:
            s = []
        s.extend(vs)
        return s

    app, s = queue([[("k", i)] for i in range(5)])
    out = s.updateStateByKey(updater).collect()
    app.run_batches(5)
    expected = [[0], [0, 1], [0, 1, 2], [0, 1, 2, 3], [0, 1, 2, 3, 4]]
    assert [r for _, r in out.batches] == [[("k", v)] for v in expected]


def test_spark_update_state_by_key_initial_rdd():
    def updater(vs, s):
        if not s:
            s = []
        s.extend(vs)
        return s

    app, s = queue([[("k", i)] for i in range(2, 5)])
    out = s.updateStateByKey(updater, initialRDD=[("k", [0, 1])]).collect()
    app.run_batches(3)
    expected = [[0, 1, 2], [0, 1, 2, 3], [0, 1, 2, 3, 4]]
    assert [r for _, r in out.batches] == [[("k", v)] for v in expected]


def test_initial_state_is_the_state_before_the_first_batch():
    calls = []

    def fn(values, state):
        calls.append((sorted(values), state))
        return total(values, state)

    app, s = queue([[], [("a", 1)]])
    out = s.update_state_by_key(fn, initial=[("a", 10), ("b", 20)]).collect()
    app.run_batches(3)
    assert dicts(out) == [
        (1.0, {"a": 10, "b": 20}),
        (2.0, {"a": 11, "b": 20}),
        (3.0, {"a": 11, "b": 20}),
    ]
    # called for every key that has a state, with [] when it has no new values
    assert sorted(calls[:2]) == [([], 10), ([], 20)]
    assert sorted(calls[2:4]) == [([], 20), ([1], 10)]


def test_none_deletes_a_key_and_it_starts_over_from_no_state():
    def fn(values, state):
        if "reset" in values:
            return None
        return (state or 0) + len(values)

    batches = [[("a", "x"), ("b", "x")], [("a", "reset")], [], [("a", "x"), ("a", "x")]]
    app, s = queue(batches)
    out = s.update_state_by_key(fn).collect()
    app.run_batches(4)
    assert dicts(out) == [
        (1.0, {"a": 1, "b": 1}),
        (2.0, {"b": 1}),
        (3.0, {"b": 1}),
        (4.0, {"a": 2, "b": 1}),
    ]


def test_a_key_whose_first_values_give_none_never_appears():
    app, s = queue([[("a", 1), ("b", -1)], [("b", -1)]])
    out = s.update_state_by_key(lambda vs, st: None if sum(vs) < 0 else total(vs, st)).collect()
    app.run_batches(2)
    assert dicts(out) == [(1.0, {"a": 1}), (2.0, {"a": 1})]


def test_repeated_keys_give_all_their_values_in_one_call():
    seen = []

    def fn(values, state):
        seen.append(sorted(values))
        return (state or []) + sorted(values)

    app, s = queue([[("a", 3), ("a", 1), ("a", 2)]])
    out = s.update_state_by_key(fn).collect()
    app.run_batches(1)
    assert seen == [[1, 2, 3]]
    assert out.batches == [(1.0, [("a", [1, 2, 3])])]


def test_update_state_keeps_nothing_outside_its_store():
    batches = random_pairs(7)
    app, s = queue(batches)
    out = s.update_state_by_key(total, initial=[("a", 100), ("z", 1)]).collect()
    run_with_fresh_ops(app, 18)
    initial = [("a", 100), ("z", 1)]
    assert dicts(out) == reference_update_state(batches, total, 18, initial)


def test_initial_state_goes_only_to_the_partition_that_owns_each_key():
    batches = random_pairs(11)
    initial = [(k, 100) for k in "abcdefxyz"]
    op = state_ops.UpdateStateByKey(total, initial)
    got = run_partitioned(op, batches, 16, 1000, partitions=3)
    for t, records in got:
        assert len(records) == len({k for k, _ in records}), f"a key twice at {t}"
    assert pairs_of(got) == dict(reference_update_state(batches, total, 16, initial))


def test_update_state_on_a_windowed_stream_runs_at_its_slides():
    app, s = queue([[("a", 1)], [("a", 1)], [("a", 1)], [("a", 1)]])
    out = s.window(2, 2).update_state_by_key(total).collect()
    app.run_batches(6)
    # the window has results at 2, 4, 6 only: batches (0,2], (2,4], (4,6]
    assert dicts(out) == [(2.0, {"a": 2}), (4.0, {"a": 4}), (6.0, {"a": 4})]


def test_update_state_by_key_spark_positional_num_partitions():
    app, s = queue([[("a", 1)], [("b", 2)]])
    out = s.updateStateByKey(total, 3, [("c", 5)]).collect()
    app.run_batches(2)
    assert dicts(out) == [(1.0, {"a": 1, "c": 5}), (2.0, {"a": 1, "b": 2, "c": 5})]


def test_update_state_by_key_needs_a_function():
    _app, s = queue([])
    with pytest.raises(ConfigError, match="fn"):
        s.update_state_by_key(None)


# -- map_with_state ----------------------------------------------------------------------
def words(batches):
    return [[(w, 1) for w in b] for b in batches]


SPARK_INPUT = [[], ["a"], ["a", "b"], ["a", "b", "c"], ["a", "b"], ["a"], []]


def sets(collected):
    return [sorted(r) for _, r in collected.batches]


def test_spark_map_with_state_states_as_mapped_data():
    def mapping(time, key, value, state):
        total_ = (value or 0) + (state.getOption() or 0)
        state.update(total_)
        return (key, total_)

    app, s = queue(words(SPARK_INPUT))
    mapped = s.mapWithState(StateSpec.function(mapping))
    snapshots = mapped.stateSnapshots().collect()
    out = mapped.collect()
    app.run_batches(7)
    assert sets(out) == [
        [],
        [("a", 1)],
        [("a", 2), ("b", 1)],
        [("a", 3), ("b", 2), ("c", 1)],
        [("a", 4), ("b", 3)],
        [("a", 5)],
        [],
    ]
    assert sets(snapshots) == [
        [],
        [("a", 1)],
        [("a", 2), ("b", 1)],
        [("a", 3), ("b", 2), ("c", 1)],
        [("a", 4), ("b", 3), ("c", 1)],
        [("a", 5), ("b", 3), ("c", 1)],
        [("a", 5), ("b", 3), ("c", 1)],
    ]


def test_spark_map_with_state_initial_states_and_nothing_returned():
    def mapping(time, key, value, state):
        state.update((value or 0) + (state.getOption() or 0))
        return None  # the 4-argument form returns an Option: None gives no record

    initial = [("a", 5), ("b", 10), ("c", -20), ("d", 0)]
    app, s = queue(words(SPARK_INPUT))
    mapped = s.map_with_state(StateSpec.function(mapping).initialState(initial))
    snapshots = mapped.state_snapshots().collect()
    out = mapped.collect()
    app.run_batches(7)
    assert sets(out) == [[]] * 7
    assert [dict(r) for _, r in snapshots.batches] == [
        {"a": 5, "b": 10, "c": -20, "d": 0},
        {"a": 6, "b": 10, "c": -20, "d": 0},
        {"a": 7, "b": 11, "c": -20, "d": 0},
        {"a": 8, "b": 12, "c": -19, "d": 0},
        {"a": 9, "b": 13, "c": -19, "d": 0},
        {"a": 10, "b": 13, "c": -19, "d": 0},
        {"a": 10, "b": 13, "c": -19, "d": 0},
    ]


def test_spark_map_with_state_state_removing():
    def mapping(time, key, value, state):
        if state.exists():
            state.remove()
            return key
        state.update(value)
        return None

    batches = [[], ["a"], ["a", "b"], ["a", "b", "c"], ["a", "b", "c"], ["a", "b"], ["a"], []]
    app, s = queue(words(batches))
    mapped = s.map_with_state(StateSpec.function(mapping).numPartitions(1))
    snapshots = mapped.state_snapshots().collect()
    out = mapped.collect()
    app.run_batches(8)
    assert sets(out) == [[], [], ["a"], ["b"], ["a", "c"], ["b"], ["a"], []]
    assert sets(snapshots) == [
        [],
        [("a", 1)],
        [("b", 1)],
        [("a", 1), ("c", 1)],
        [("b", 1)],
        [("a", 1)],
        [],
        [],
    ]


def test_spark_map_with_state_timing_out():
    def mapping(time, key, value, state):
        if value is not None:
            state.update(1)
        return key if state.isTimingOut() else None

    batches = [["a", "b", "c"], ["a", "b"], ["a"], [], [], ["a"]] + [["a"]] * 20
    app, s = queue(words(batches))
    mapped = s.map_with_state(StateSpec.function(mapping).timeout(3))
    snapshots = mapped.state_snapshots().collect()
    out = mapped.collect()
    app.run_batches(20)
    # Spark's assertions: b and c returned once each, all three states at one point,
    # and finally only a
    assert sorted(r for _, b in out.batches for r in b) == ["b", "c"]
    assert any(set(r) == {("a", 1), ("b", 1), ("c", 1)} for _, r in snapshots.batches)
    assert set(snapshots.batches[-1][1]) == {("a", 1)}
    # and when: idle for the timeout (3 s), c (last record at 1) at 4, b (at 2) at 5
    assert [(t, r) for t, r in out.batches if r] == [(4.0, ["c"]), (5.0, ["b"])]


def test_timeout_call_gets_none_and_the_last_state_then_the_key_is_gone():
    calls = []

    def mapping(key, value, state):
        calls.append((key, value, state.get(), state.is_timing_out()))
        if not state.is_timing_out():
            state.update(state.get() + value)
        return (key, state.get())

    app, s = queue([[("a", 1)], [("a", 1)]])
    spec = StateSpec(mapping, timeout=2, initial=[("a", 10)])
    mapped = s.map_with_state(spec)
    snapshots = mapped.state_snapshots().collect()
    out = mapped.collect()
    app.run_batches(6)
    assert calls == [("a", 1, 10, False), ("a", 1, 11, False), ("a", None, 12, True)]
    assert out.batches == [
        (1.0, [("a", 11)]),
        (2.0, [("a", 12)]),
        (3.0, []),
        (4.0, [("a", 12)]),  # idle since 2 for 2 s: timed out
        (5.0, []),
        (6.0, []),
    ]
    assert [r for _, r in snapshots.batches] == [[("a", 11)], [("a", 12)], [("a", 12)], [], [], []]


def test_initial_state_times_out_from_the_first_batch():
    app, s = queue([])
    mapped = s.map_with_state(
        StateSpec(lambda k, v, st: (k, st.is_timing_out()), timeout=2, initial=[("x", 0)])
    )
    out = mapped.collect()
    app.run_batches(4)
    assert out.batches == [(1.0, []), (2.0, []), (3.0, [("x", True)]), (4.0, [])]


def test_a_key_with_records_but_no_update_keeps_its_state_alive():
    # Spark: with a timeout, an existing state that gets a record counts as active
    def mapping(key, value, state):
        if not state.exists():
            state.update("s")
        return (key, state.is_timing_out())

    app, s = queue([[("a", 1)], [], [("a", 2)], [], [], [], []])
    out = s.map_with_state(StateSpec(mapping, timeout=3)).collect()
    app.run_batches(7)
    assert [(t, r) for t, r in out.batches if r] == [
        (1.0, [("a", False)]),
        (3.0, [("a", False)]),
        (6.0, [("a", True)]),
    ]


def test_three_argument_form_emits_every_result_and_sees_earlier_updates():
    def mapping(key, value, state):
        seen = state.get_option()
        state.update((seen or 0) + value)
        return None if seen is None else (key, seen)

    app, s = queue([[("a", 1), ("a", 2), ("b", 5), ("a", 3)]])
    out = s.map_with_state(StateSpec(mapping)).collect()
    app.run_batches(2)
    # one call per record, in order; None results are records too (Spark's MappedType)
    assert out.batches == [(1.0, [None, ("a", 1), None, ("a", 3)]), (2.0, [])]


def test_state_object_rules():
    st = state_ops.State(None)
    assert not st.exists() and st.get_option() is None and st.getOption() is None
    with pytest.raises(LookupError):
        st.get()
    st.update(3)
    assert st.exists() and st.get() == 3
    st.remove()
    assert not st.exists()
    with pytest.raises(ValueError):
        st.remove()
    with pytest.raises(ValueError):
        st.update(1)
    out = state_ops.State((5, 0), timing_out=True)
    assert out.isTimingOut() and out.get() == 5
    with pytest.raises(ValueError):
        out.update(6)
    with pytest.raises(ValueError):
        out.remove()


def test_map_with_state_keeps_nothing_outside_its_store():
    def mapping(t, key, value, state):
        if value is not None:
            state.update((state.getOption() or 0) + value)
        return (t, key, state.getOption(), state.isTimingOut())

    batches = random_pairs(5, n_batches=10)

    def build():
        app, s = queue(batches)
        mapped = s.map_with_state(StateSpec(mapping, timeout=3, initial=[("a", 1), ("q", 2)]))
        return app, mapped.state_snapshots().collect(), mapped.collect()

    app1, snaps1, out1 = build()
    app1.run_batches(16)
    app2, snaps2, out2 = build()
    run_with_fresh_ops(app2, 16)
    assert [(t, sorted(r)) for t, r in out1.batches] == [(t, sorted(r)) for t, r in out2.batches]
    assert dicts(snaps1) == dicts(snaps2)
    assert any(r[3] for _, b in out1.batches for r in b)  # some timed out


def test_map_with_state_partitioned_equals_one_store():
    def mapping(key, value, state):
        if state.is_timing_out():
            return ("timeout", key)
        state.update((state.get_option() or 0) + value)
        return (key, state.get())

    batches = random_pairs(9, n_batches=12)
    initial = [(k, 0) for k in "abxyz"]
    spec = StateSpec(mapping, timeout=2, initial=initial)

    def run(partitions):
        op = state_ops.MapWithState(spec, 2000, snapshots=True)
        return [
            (t, sorted(r, key=repr)) for t, r in run_partitioned(op, batches, 16, 1000, partitions)
        ]

    assert run(3) == run(1)


def test_map_with_state_config_errors():
    _app, s = queue([])
    with pytest.raises(ConfigError, match="StateSpec timeout"):
        s.map_with_state(StateSpec(lambda k, v, st: v, timeout=-1))
    with pytest.raises(ConfigError, match="StateSpec timeout"):
        s.map_with_state(StateSpec(lambda k, v, st: v, timeout="10"))
    with pytest.raises(ConfigError, match="spec"):
        s.map_with_state(lambda k, v, st: v)
    with pytest.raises(ConfigError, match="fn"):
        s.map_with_state(StateSpec(None))


def test_state_spec_is_exported_by_compat():
    from kstream.compat import StateSpec as CompatSpec

    assert CompatSpec is StateSpec
    spec = CompatSpec.function(operator.add).timeout(10).initialState([("a", 1)])
    assert (spec.timeout_seconds, spec.initial) == (10, [("a", 1)])


# -- Spark's stateful_network_wordcount.py, only its imports changed ---------------------
STATEFUL_NETWORK_WORD_COUNT = """\
import sys
from typing import Iterable, Optional

from kstream.compat import SparkContext
from kstream.compat import StreamingContext

if __name__ == "__main__":
    if len(sys.argv) != 3:
        print("Usage: stateful_network_wordcount.py <hostname> <port>", file=sys.stderr)
        sys.exit(-1)
    sc = SparkContext(appName="PythonStreamingStatefulNetworkWordCount")
    ssc = StreamingContext(sc, 1)
    ssc.checkpoint("checkpoint")

    # RDD with initial state (key, value) pairs
    initialStateRDD = sc.parallelize([(u'hello', 1), (u'world', 1)])

    def updateFunc(new_values: Iterable[int], last_sum: Optional[int]) -> int:
        return sum(new_values) + (last_sum or 0)

    lines = ssc.socketTextStream(sys.argv[1], int(sys.argv[2]))
    running_counts = lines.flatMap(lambda line: line.split(" "))\\
                          .map(lambda word: (word, 1))\\
                          .updateStateByKey(updateFunc, initialRDD=initialStateRDD)

    running_counts.pprint()

    ssc.start()
    ssc.awaitTermination()
"""


def test_spark_stateful_network_wordcount(tmp_path, line_server):
    before = sorted(["('hello', 1)", "('world', 1)"])
    after = sorted(["('hello', 3)", "('world', 1)", "('spark', 1)"])

    def done(out):
        blocks = [sorted(r) for _, r in pprint_blocks(out)]
        return after in blocks and blocks[-1] == after and blocks.count(after) >= 2

    out, err = run_program(
        tmp_path,
        STATEFUL_NETWORK_WORD_COUNT,
        ["localhost", str(line_server.port)],
        lambda: line_server.send(b"hello spark hello\n", timeout=15),
        done,
        timeout=20,
    )
    blocks = [sorted(r) for _, r in pprint_blocks(out)]
    assert done(out), out + err
    first = blocks.index(after)
    # the initial state every second until the line came, then the running counts
    assert all(b == before for b in blocks[:first]), out
    assert all(b == after for b in blocks[first:]), out
