"""compile_plan: stages split at shuffles, and the repartition topics between them."""

from __future__ import annotations

import operator

import pytest

import kstream
from kstream.errors import ConfigError
from kstream.plan import compile_plan


def kinds(stage):
    return [n.op.kind for n in stage.nodes]


def node_of_kind(plan, kind):
    (node,) = [n for s in plan.stages for n in s.nodes if n.op.kind == kind]
    return node


def test_word_count_has_two_stages_and_one_repartition_topic():
    app = kstream.App("wc", batch_interval=1.0)
    counts = (
        app.stream("lines").flat_map(str.split).map(lambda w: (w, 1)).reduce_by_key(operator.add)
    )
    counts.to("word-counts")
    plan = compile_plan(app)

    assert len(plan.stages) == 2
    assert len(plan.exchanges) == 1
    (x,) = plan.exchanges
    reduce_node = node_of_kind(plan, "reduce_by_key")
    # named by the operator and its function (kstream/names.py), not by its position
    assert reduce_node.name == "reduce_by_key.add"
    assert x.topic == "wc--reduce_by_key.add--repartition"
    assert x.writer_stage == 0
    assert len(x.sides) == 1

    first, second = plan.stages
    assert kinds(first) == ["source", "flat_map", "map", "shuffle"]
    assert kinds(second) == ["reduce_by_key", "to"]
    assert first.input_topics() == ["lines"]
    assert second.input_topics() == [x.topic]
    assert first.writes == [x]
    assert second.reads == [x]
    assert [n.op.topic for n in second.sinks] == ["word-counts"]
    assert plan.source_topics() == ["lines"]
    assert plan.output_topics() == ["word-counts"]


def test_describe_of_a_word_count():
    app = kstream.App("wc", batch_interval=1.0)
    app.stream("lines").flat_map(str.split).map(lambda w: (w, 1)).reduce_by_key(operator.add).to(
        "word-counts"
    )
    d = app.describe()
    (topic,) = d["internal_topics"]
    assert d["app_id"] == "wc"
    assert d["source_topics"] == ["lines"]
    assert d["output_topics"] == ["word-counts"]
    assert [s["reads"] for s in d["stages"]] == [["lines"], [topic]]
    assert [s["writes"] for s in d["stages"]] == [[topic], ["word-counts"]]
    assert d["stages"][0]["operators"] == ["source(lines)", "flat_map", "map"]
    # operators with state or a shuffle show the name that keys them (name=...)
    assert d["stages"][1]["operators"] == ["reduce_by_key as reduce_by_key.add", "to(word-counts)"]
    assert d["dlq_topic"] == "wc-dlq"


def test_the_dead_letter_topic_is_there_when_something_may_go_to_it():
    def dlq(**settings):
        app = kstream.App("d", batch_interval=1.0, **settings)
        return app.stream("t").map(lambda kv: (kv, 1)), app

    s, app = dlq(on_error="skip")
    s.to("out")
    assert compile_plan(app).dlq_topic is None
    assert app.describe()["dlq_topic"] is None
    s, app = dlq(on_error="fail")
    s.reduce_by_key_and_session(operator.add, 2.0, late="dlq").to("out")
    assert compile_plan(app).dlq_topic == "d-dlq"  # late="dlq" needs it whatever on_error
    s, app = dlq()
    s.to("out")
    assert compile_plan(app).dlq_topic == "d-dlq"


def test_a_keyed_source_needs_no_shuffle():
    app = kstream.App("k", batch_interval=1.0)
    app.stream("t", keyed=True).reduce_by_key(operator.add).to("out")
    plan = compile_plan(app)
    assert len(plan.stages) == 1
    assert plan.exchanges == []
    assert kinds(plan.stages[0]) == ["source", "reduce_by_key", "to"]


def test_key_preserving_operators_keep_a_keyed_source_partitioned():
    app = kstream.App("k", batch_interval=1.0)
    s = app.stream("t", keyed=True).filter(lambda kv: kv[1]).map_values(len)
    s.flat_map_values(range).group_by_key().pprint()
    plan = compile_plan(app)
    assert len(plan.stages) == 1
    assert plan.exchanges == []


def test_a_key_changing_map_needs_a_shuffle():
    app = kstream.App("k", batch_interval=1.0)
    app.stream("t", keyed=True).map(lambda kv: (kv[1], kv[0])).reduce_by_key(operator.add).pprint()
    plan = compile_plan(app)
    assert len(plan.stages) == 2
    assert len(plan.exchanges) == 1


def test_aggregating_twice_by_the_same_key_shuffles_once():
    app = kstream.App("a", batch_interval=1.0)
    counts = app.stream("t").map(lambda w: (w, 1)).reduce_by_key(operator.add)
    counts.reduce_by_key(max).group_by_key().pprint()
    plan = compile_plan(app)
    assert len(plan.stages) == 2
    assert len(plan.exchanges) == 1


def test_re_keying_an_aggregate_adds_a_third_stage():
    app = kstream.App("a", batch_interval=1.0)
    per_word = app.stream("t").map(lambda w: (w, 1)).reduce_by_key(operator.add)
    per_letter = per_word.map(lambda kv: (kv[0][0], kv[1])).reduce_by_key(operator.add)
    per_letter.to("letters")
    plan = compile_plan(app)
    assert len(plan.stages) == 3
    assert [x.writer_stage for x in plan.exchanges] == [0, 1]
    assert len({x.topic for x in plan.exchanges}) == 2
    # two reduce_by_key(operator.add): numbered among themselves
    assert [x.topic for x in plan.exchanges] == [
        "a--reduce_by_key.add--repartition",
        "a--reduce_by_key.add-2--repartition",
    ]
    assert plan.stages[1].reads == [plan.exchanges[0]]
    assert plan.stages[1].writes == [plan.exchanges[1]]
    assert plan.stages[2].reads == [plan.exchanges[1]]


def test_a_join_has_one_topic_with_two_sides():
    app = kstream.App("j", batch_interval=1.0)
    left = app.stream("orders", keyed=True)
    right = app.stream("users", keyed=True)
    left.join(right).to("enriched")
    plan = compile_plan(app)

    assert len(plan.stages) == 2
    (x,) = plan.exchanges
    assert x.topic == "j--join--repartition"
    assert len(x.sides) == 2
    assert sorted(n.op.side for n in x.sides) == [0, 1]
    assert {n.op.target for n in x.sides} == {"join"}
    first, second = plan.stages
    assert sorted(first.input_topics()) == ["orders", "users"]
    assert len(first.sources) == 2
    assert kinds(second) == ["join", "to"]
    assert second.reads == [x]
    assert first.writes == [x]


@pytest.mark.parametrize(
    ("method", "kind"),
    [
        ("left_outer_join", "left_outer_join"),
        ("right_outer_join", "right_outer_join"),
        ("full_outer_join", "full_outer_join"),
        ("cogroup", "cogroup"),
    ],
)
def test_other_joins_name_their_topic_by_kind(method, kind):
    app = kstream.App("j", batch_interval=1.0)
    a = app.stream("a", keyed=True)
    b = app.stream("b", keyed=True)
    getattr(a, method)(b).pprint()
    (x,) = compile_plan(app).exchanges
    assert x.topic == f"j--{kind}--repartition"
    assert len(x.sides) == 2


@pytest.mark.parametrize(
    ("build", "kind", "partitions"),
    [
        (lambda s: s.count(), "count", 1),
        (lambda s: s.reduce(operator.add), "reduce.add", 1),
        (lambda s: s.repartition(6), "repartition", 6),
        (lambda s: s.count_by_value(), "count_by_value", None),
        (lambda s: s.map(lambda x: (x, 1)).group_by_key(num_partitions=4), "group_by_key", 4),
    ],
)
def test_whole_batch_operators_shuffle(build, kind, partitions):
    app = kstream.App("w", batch_interval=1.0)
    build(app.stream("t")).pprint()
    plan = compile_plan(app)
    (x,) = plan.exchanges
    assert x.topic == f"w--{kind}--repartition"
    assert x.shuffle.partitions == partitions
    assert len(plan.stages) == 2


def test_count_by_value_on_a_keyed_stream_still_shuffles():
    # It counts whole records, not keys: a keyed source is not partitioned by record.
    app = kstream.App("w", batch_interval=1.0)
    app.stream("t", keyed=True).count_by_value().pprint()
    assert len(compile_plan(app).exchanges) == 1


def test_an_app_without_operators_has_an_empty_plan():
    plan = compile_plan(kstream.App("empty"))
    assert plan.stages == []
    assert plan.exchanges == []
    assert plan.source_topics() == []


def test_a_union_across_a_shuffle_is_a_config_error():
    app = kstream.App("u", batch_interval=1.0)
    raw = app.stream("t").map(lambda w: (w, 1))
    raw.reduce_by_key(operator.add).union(raw).pprint()
    with pytest.raises(ConfigError, match="union"):
        compile_plan(app)


NO_OUTPUT = "No output operations registered, so nothing to execute"


def test_a_pipeline_without_an_output_is_refused_by_local_runs():
    app = kstream.App("t", batch_interval=1.0)
    app.queue_stream([["a b"]]).flat_map(str.split).count_by_value()
    with pytest.raises(ConfigError, match=NO_OUTPUT) as refused:
        app.run_batches(1)
    assert "\n" not in str(refused.value)
    with pytest.raises(ConfigError, match=NO_OUTPUT):
        app.run(timeout=0.1)


def test_a_pipeline_without_an_output_is_refused_by_a_worker(monkeypatch, tmp_path):
    from tests.unit.offline import offline_worker

    app = kstream.App("t", batch_interval=1.0, state_dir=str(tmp_path))
    app.stream("lines").map(str.upper)
    with pytest.raises(ConfigError, match=NO_OUTPUT):
        offline_worker(app, {"lines": 1})


def test_one_output_anywhere_is_enough():
    app = kstream.App("t", batch_interval=1.0)
    s = app.queue_stream([["a"]])
    s.map(str.upper)  # a branch without an output does not matter
    out = s.collect()
    app.run_batches(1)
    assert out.records() == ["a"]


def test_an_aggregation_reading_a_stream_partitioned_by_key_combines_its_batch_itself():
    app = kstream.App("p", batch_interval=1.0)
    first = app.stream("lines").map(lambda w: (w, 1)).reduce_by_key(operator.add)
    first.reduce_by_key(operator.add).to("out")
    first.group_by_key(num_partitions=3).to("groups")
    plan = compile_plan(app)
    assert len(plan.exchanges) == 2  # the first reduce_by_key's, and the 3 partitions'
    ops = [n.op for n in app.ordered_nodes() if n.op.kind in ("reduce_by_key", "group_by_key")]
    # fed through a shuffle (which ran `partial`), fed directly, through a shuffle again
    assert [(op.kind, op.pre_combined) for op in ops] == [
        ("reduce_by_key", True),
        ("reduce_by_key", False),
        ("group_by_key", True),
    ]


def test_state_snapshots_are_the_map_with_state_operators_own_from_its_construction():
    app = kstream.App("p", batch_interval=1.0)
    spec = kstream.StateSpec(lambda k, v, state: v)
    mapped = app.stream("lines").map(lambda w: (w, 1)).map_with_state(spec)
    mapped.to("out")
    (node,) = [n for n in app.ordered_nodes() if n.op.kind == "map_with_state"]
    assert node.op.snapshots is False
    mapped.state_snapshots().to("snapshots")
    assert node.op.snapshots is True
    assert node_of_kind(compile_plan(app), "map_with_state") is node
