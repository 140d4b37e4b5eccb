"""No shuffle where the data is already partitioned: each node's Partitioning, the stages
it saves in the plan, where the state of an operator without a shuffle of its own lives,
and local results equal to those of the same pipeline with the shuffle forced."""

from __future__ import annotations

import operator

import pytest

import kstream
from kstream import StateSpec
from kstream.partitioning import KEYED_SOURCE, Partitioning
from kstream.plan import compile_plan


def add_state(values, total):
    return sum(values) + (total or 0)


def running(key, value, state):
    total = (state.get() if state.exists() else 0) + value
    state.update(total)
    return (key, total)


def counted(app, partitions=None):
    """Words counted per batch: the output of a keyed operator."""
    words = app.stream("lines").flat_map(str.split).map(lambda w: (w, 1))
    return words.reduce_by_key(operator.add, num_partitions=partitions)


def stages(app):
    plan = compile_plan(app)
    return len(plan.stages), [x.topic for x in plan.exchanges]


def kinds(plan, index):
    return [n.op.kind for n in plan.stages[index].nodes]


# -- the pipelines that shuffled twice -------------------------------------------------
SECOND_OPERATORS = {
    "map_with_state": lambda s: s.map_with_state(StateSpec(running)),
    "update_state_by_key": lambda s: s.update_state_by_key(add_state),
    "reduce_by_key_and_window": lambda s: s.reduce_by_key_and_window(operator.add, None, 4, 2),
    "group_by_key_and_window": lambda s: s.group_by_key_and_window(4, 2),
    "reduce_by_key_and_session": lambda s: s.reduce_by_key_and_session(operator.add, 3),
    "join_with_itself": lambda s: s.join(s.map_values(str)),
    "cogroup_with_itself": lambda s: s.filter(bool).cogroup(s),
}


@pytest.mark.parametrize("second", sorted(SECOND_OPERATORS))
def test_a_keyed_operator_after_a_keyed_operator_reads_its_output_without_a_shuffle(second):
    app = kstream.App("a", batch_interval=1.0)
    SECOND_OPERATORS[second](counted(app)).to("out")
    plan = compile_plan(app)
    assert len(plan.stages) == 2
    assert [x.topic for x in plan.exchanges] == ["a--reduce_by_key.add--repartition"]
    assert kinds(plan, 1)[0] == "reduce_by_key"
    assert "shuffle" not in kinds(plan, 1)


def test_the_state_of_an_operator_without_a_shuffle_is_kept_per_partition_of_its_stage():
    app = kstream.App("a", batch_interval=1.0)
    counted(app).map_with_state(StateSpec(running), name="totals").to("out")
    plan = compile_plan(app)
    (x,) = plan.exchanges
    assert [n.name for n in x.stateful] == ["totals"]
    assert plan.changelog_topics() == ["a--totals--changelog"]
    assert plan.describe()["internal_topics"] == [
        "a--reduce_by_key.add--repartition",
        "a--totals--changelog",
    ]


def test_a_chain_of_stateful_operators_keeps_its_state_per_partition_of_one_topic():
    app = kstream.App("a", batch_interval=1.0)
    totals = counted(app).update_state_by_key(add_state, name="totals")
    totals.map_values(lambda v: v * 2).reduce_by_key_and_window(operator.add, None, 2, name="w")
    totals.to("out")
    plan = compile_plan(app)
    (x,) = plan.exchanges
    assert [n.name for n in x.stateful] == ["totals", "w"]
    assert len(plan.stages) == 2


def test_describe_shows_one_stage_fewer():
    app = kstream.App("a", batch_interval=1.0)
    counted(app).map_with_state(StateSpec(running), name="totals").to("out")
    d = app.describe()
    assert [s["stage"] for s in d["stages"]] == [0, 1]
    assert d["stages"][1]["operators"] == [
        "reduce_by_key as reduce_by_key.add",
        "map_with_state as totals",
        "mapped",
        "to(out)",
    ]
    assert d["stages"][1]["reads"] == ["a--reduce_by_key.add--repartition"]


# -- what keeps the partitioning and what loses it -------------------------------------
def test_each_node_records_how_it_is_partitioned():
    app = kstream.App("a", batch_interval=1.0)
    source = app.stream("lines")
    keyed = app.stream("pairs", keyed=True)
    counts = counted(app, partitions=4)
    by_key = Partitioning("reduce_by_key.add", 4)
    assert source.node.partitioning is None
    assert keyed.node.partitioning == KEYED_SOURCE
    assert counts.node.partitioning == by_key
    for kept in (
        counts.map_values(str),
        counts.flat_map_values(range),
        counts.filter(bool),
        counts.map(lambda kv: kv, preserves_partitioning=True),
        counts.flat_map(lambda kv: [kv], preserves_partitioning=True),
        counts.transform(lambda rs: rs, preserves_partitioning=True),
        counts.union(counts.filter(bool)),
        counts.map_with_state(StateSpec(running), preserves_partitioning=True),
        counts.map_with_state(StateSpec(running)).state_snapshots(),
        counts.update_state_by_key(add_state),
    ):
        assert kept.node.partitioning == by_key
    for lost in (
        counts.map(lambda kv: kv),
        counts.flat_map(lambda kv: [kv]),
        counts.transform(lambda rs: rs),
        counts.map_with_state(StateSpec(running)),
        counts.union(counted(app, partitions=4).map_values(str)),
        counts.window(2),
        counts.count(),
    ):
        assert lost.node.partitioning is None
    assert counts.count_by_value().node.partitioning == Partitioning("count_by_value", None)


@pytest.mark.parametrize(
    ("step", "n_stages"),
    [
        (lambda s: s.map(lambda kv: kv), 3),
        (lambda s: s.flat_map(lambda kv: [kv]), 3),
        (lambda s: s.transform(lambda rs: rs), 3),
        (lambda s: s.map(lambda kv: kv, preserves_partitioning=True), 2),
        (lambda s: s.flat_map(lambda kv: [kv], preserves_partitioning=True), 2),
        (lambda s: s.transform(lambda rs: rs, preserves_partitioning=True), 2),
    ],
)
def test_a_map_loses_the_partitioning_unless_it_says_it_preserves_it(step, n_stages):
    app = kstream.App("a", batch_interval=1.0)
    step(counted(app)).map_with_state(StateSpec(running)).to("out")
    assert stages(app)[0] == n_stages


def test_the_mapped_records_of_map_with_state_may_have_any_key():
    app = kstream.App("a", batch_interval=1.0)
    mapped = counted(app).map_with_state(StateSpec(running))
    mapped.reduce_by_key(operator.add).to("out")
    mapped.state_snapshots().reduce_by_key(max).to("snapshots")
    plan = compile_plan(app)
    assert len(plan.stages) == 3
    assert [x.topic for x in plan.exchanges] == [
        "a--reduce_by_key.add--repartition",
        "a--reduce_by_key.add-2--repartition",  # the mapped records' reduce
    ]
    assert "reduce_by_key" in kinds(plan, 1)  # the snapshots' reduce, without a shuffle


@pytest.mark.parametrize(
    ("upstream", "downstream", "n_stages"),
    [
        (4, 4, 2),  # the count asked for is the input's
        (4, None, 2),  # any count will do
        (4, 8, 3),
        (None, 4, 3),  # the default count is known only when a worker starts
    ],
)
def test_a_different_partition_count_shuffles(upstream, downstream, n_stages):
    app = kstream.App("a", batch_interval=1.0)
    counted(app, upstream).update_state_by_key(add_state, num_partitions=downstream).to("out")
    assert stages(app)[0] == n_stages


def test_streams_out_of_two_shuffles_are_joined_through_one():
    """Same key and partition count, but their partitions are separate tasks (which the
    consumer group may give to different workers): the join shuffles both sides."""
    app = kstream.App("a", batch_interval=1.0)
    a, b = counted(app, 4), counted(app, 4).map_values(str)
    a.join(b, num_partitions=4).to("out")
    plan = compile_plan(app)
    assert len(plan.stages) == 3
    (joined,) = [x for x in plan.exchanges if x.target.op.kind == "join"]
    assert len(joined.sides) == 2


def test_a_keyed_source_is_read_as_it_is_only_without_state():
    """Its producers placed its keys: an aggregation without state reads it as it is, an
    operator keeping state needs kstream's own placement (its stores and changelogs)."""
    app = kstream.App("a", batch_interval=1.0)
    app.stream("pairs", keyed=True).reduce_by_key(operator.add).to("out")
    assert stages(app) == (1, [])
    app = kstream.App("b", batch_interval=1.0)
    app.stream("pairs", keyed=True).update_state_by_key(add_state).to("out")
    assert stages(app) == (2, ["b--update_state_by_key.add_state--repartition"])


def test_operators_without_a_shuffle_combine_their_own_input():
    app = kstream.App("a", batch_interval=1.0)
    counts = counted(app)
    assert counts.update_state_by_key(add_state).node.op.pre_combined is False
    assert counts.reduce_by_key_and_window(operator.add, None, 2).node.op.pre_combined is False
    assert counts.group_by_key_and_window(2).node.op.pre_combined is False
    shuffled = counts.map(lambda kv: kv)
    assert shuffled.update_state_by_key(add_state).node.op.pre_combined is True
    assert shuffled.reduce_by_key_and_window(operator.add, None, 2).node.op.pre_combined is True
    assert shuffled.group_by_key_and_window(2).node.op.pre_combined is True


# -- local results: the same as through a forced shuffle -------------------------------
BATCHES = [["a b a", "c"], [], ["b b", "a c c"], ["a"], ["d a b"], []]
KEYED_OPERATORS = {
    **{k: v for k, v in SECOND_OPERATORS.items() if not k.endswith("itself")},
    "join_with_itself": lambda s: s.join(s.map_values(str)),
    "cogroup_with_itself": lambda s: s.cogroup(s.filter(lambda kv: kv[1] > 1)),
    "reduce_by_key": lambda s: s.reduce_by_key(operator.mul),
    "group_by_key": lambda s: s.group_by_key(),
}


def run_locally(second, forced: bool):
    app = kstream.App("local", batch_interval=1.0)
    words = app.queue_stream(BATCHES).flat_map(str.split).map(lambda w: (w, 1))
    # several records per key reach the second operator: it must combine them itself
    counts = words.reduce_by_key(operator.add).flat_map_values(lambda n: [n, n + 1])
    if forced:
        counts = counts.map(lambda kv: kv)  # loses the partitioning: a shuffle
    out = KEYED_OPERATORS[second](counts).collect()
    app.run_batches(len(BATCHES) + 4)
    return stages(app)[0], [(t, sorted(map(repr, rs))) for t, rs in out.batches]


@pytest.mark.parametrize("second", sorted(KEYED_OPERATORS))
def test_local_results_equal_those_through_a_shuffle(second):
    skipped_stages, skipped = run_locally(second, forced=False)
    forced_stages, forced = run_locally(second, forced=True)
    assert (skipped_stages, forced_stages) == (2, 3)
    assert skipped == forced
    assert any(records for _, records in skipped)
