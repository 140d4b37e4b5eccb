"""Failure isolation's strategies (kstream/isolation.py) without Kafka: a stage of a
compiled plan runs over tasks of plain records; which become dead letters, what the
stores hold after a failure, and when the worker stops."""

from __future__ import annotations

import logging
import operator

import pytest

import kstream
from kstream.codec import Msgpack
from kstream.dead_letters import DeadLetter
from kstream.isolation import StatefulBody, StatelessBody, WithSinks, attempt, stage_strategy
from kstream.observe.metrics import Metrics
from kstream.ops.stateful import keyed_items
from kstream.partitioning import owner
from kstream.plan import Stage, compile_plan
from kstream.poison import Poison, PoisonRecordError, TaskBatch
from kstream.prepare import build_stages
from kstream.runner import BatchRunner
from kstream.state.memory import MemoryStore

T = 10_000


class ListTask(TaskBatch):
    """A partition's records of a batch, all read by one node; dead letters carry the
    record's index as their offset and its repr as their value."""

    def __init__(self, node, records: list, p: int = 0, t: int = T):
        super().__init__(("in", p), t)
        self.node = node
        self.rows = records
        self.records = self.size = len(records)

    def inputs(self):
        return {self.node: [r for i, r in enumerate(self.rows) if i not in self.dead]}

    def unit(self, i):
        return {self.node: [self.rows[i]]}

    def letter(self, i, reason, error, operator):
        return DeadLetter.of(
            reason,
            error,
            operator,
            topic="in",
            partition=self.tp[1],
            offset=i,
            key=None,
            value=repr(self.rows[i]).encode(),
            timestamp=self.t,
            batch=self.t,
            headers=[],
        )

    def late(self, node, record, why):
        letter = self.letter(0, "late", RuntimeError(why), node.name)
        letter.value = repr(record).encode()
        return letter


class StoresPerTask:
    """TaskStores' part the stateful strategy uses: one store per task, 2 partitions."""

    def __init__(self, node):
        self.node = node
        self.by_partition: dict[int, MemoryStore] = {}
        self.batches: list[tuple[int, int, int]] = []  # (partition, batch, position)

    def for_batch(self, topic, p, t, position):
        self.batches.append((p, t, position))
        store = self.by_partition.setdefault(p, MemoryStore(Msgpack(), "state"))
        return {self.node: store}

    def owns(self, topic, p):
        return owner(p, 2)


def poison() -> Poison:
    return Poison("p", "dlq", "p-dlq", Metrics("p"))


def offsets(task: TaskBatch) -> list[tuple[int, str]]:
    return [(x.offset, x.reason) for x in task.letters]


def sink_values(values, stage: Stage) -> list:
    """What the stage's sink was given."""
    (sink,) = [n for n in stage.nodes if n.op.is_sink]
    return list(values[sink.parents[0]])


# -- stateless ---------------------------------------------------------------------------
def stateless_stage(build) -> tuple[Stage, object]:
    app = kstream.App("p", batch_interval=1.0)
    source = app.queue_stream([])
    build(source).collect()
    (stage,) = compile_plan(app).stages
    return stage, source.node


def test_a_stateless_stage_is_taken_apart_task_by_task_then_record_by_record():
    stage, src = stateless_stage(lambda s: s.map(lambda x: 10 // x))
    strategy = stage_strategy(stage, poison(), None, lambda tp: 0)
    assert isinstance(strategy, WithSinks) and isinstance(strategy.body, StatelessBody)
    broken, fine = ListTask(src, [1, 0, 2], p=0), ListTask(src, [5], p=1)
    values = strategy.run(T, {src: []}, [broken, fine])
    assert sink_values(values, stage) == [10, 5, 2]  # the survivors as one batch
    assert offsets(broken) == [(1, "function")] and fine.letters == []
    assert broken.letters[0].error_type == "ZeroDivisionError"
    assert broken.letters[0].operator.startswith("map-2 (")


def test_records_that_fail_only_together_are_all_poison(caplog):
    def not_a_with_b(batch):
        if {"a", "b"} <= set(batch):
            raise ValueError("a and b together")
        return batch

    stage, src = stateless_stage(lambda s: s.transform(not_a_with_b))
    task = ListTask(src, ["a", "b", "c"])
    with caplog.at_level(logging.WARNING, "kstream.poison"):
        values = stage_strategy(stage, poison(), None, lambda tp: 0).run(T, {src: []}, [task])
    assert sink_values(values, stage) == []
    assert offsets(task) == [(0, "function"), (1, "function"), (2, "function")]
    assert "in[0] fails only with its records together" in caplog.text


def test_a_stage_that_fails_without_records_stops_the_worker():
    stage, src = stateless_stage(lambda s: s.transform(lambda batch: 1 // 0))
    strategy = stage_strategy(stage, poison(), None, lambda tp: 0)
    with pytest.raises(PoisonRecordError, match="on in\\[0\\] of batch 10000, even without"):
        strategy.run(T, {src: []}, [ListTask(src, ["a"])])
    with pytest.raises(PoisonRecordError, match="on an empty batch of batch 10000"):
        strategy.run(T, {src: []}, [])


def test_an_error_that_is_not_a_records_fault_goes_up_untouched():
    def out_of_memory(x):
        raise MemoryError

    stage, src = stateless_stage(lambda s: s.map(out_of_memory))
    task = ListTask(src, [1])
    with pytest.raises(MemoryError):
        stage_strategy(stage, poison(), None, lambda tp: 0).run(T, {src: []}, [task])
    assert task.letters == []
    with pytest.raises(MemoryError):
        attempt(stage.nodes, T, {src: [1]})


# -- stateful ------------------------------------------------------------------------------
def stateful_stage(build, sink=None) -> tuple[Stage, object]:
    """Stage 1 (after the shuffle) of source -> build(...) -> sink, and the shuffle node
    that feeds it."""
    app = kstream.App("p", batch_interval=1.0)
    out = build(app.queue_stream([]).map(lambda w: (w, 1)))
    if sink is None:
        out.collect()
    else:
        out.foreach_batch(sink, retries=0)
    stage = compile_plan(app).stages[1]
    (side,) = stage.reads[0].sides
    return stage, side


def failing_on_bad(values, state):
    if "bad" in values:
        raise ValueError("bad value")
    return (state or 0) + sum(values)


def test_a_stateful_task_that_fails_is_rolled_back_all_poison_and_run_without_input(caplog):
    stage, side = stateful_stage(lambda s: s.update_state_by_key(failing_on_bad))
    (node,) = [n for n in stage.nodes if n.op.kind == "update_state_by_key"]
    stores = StoresPerTask(node)
    strategy = stage_strategy(stage, poison(), stores, lambda tp: 40 + tp[1])
    assert isinstance(strategy, WithSinks) and isinstance(strategy.body, StatefulBody)
    strategy.run(T, {side: []}, [ListTask(side, [("a", [1])], p=0, t=T)])
    failing = ListTask(side, [("a", [2]), ("b", ["bad"])], p=0, t=T + 1000)
    with caplog.at_level(logging.WARNING, "kstream.poison"):
        values = strategy.run(T + 1000, {side: []}, [failing])
    assert sink_values(values, stage) == [("a", 1)]  # the state as if it had no input
    assert offsets(failing) == [(0, "function"), (1, "function")]
    assert "its state changes are undone and all 2 of its records" in caplog.text
    assert dict(keyed_items(stores.by_partition[0])) == {"a": 1}
    assert stores.batches == [(0, T, 40), (0, T + 1000, 40)]


def test_a_stateful_stage_runs_every_task_over_its_own_store_and_key_ownership():
    stage, side = stateful_stage(
        lambda s: s.update_state_by_key(lambda v, s: sum(v) + (s or 0), initial=[("a", 9)])
    )
    (node,) = [n for n in stage.nodes if n.op.kind == "update_state_by_key"]
    stores = StoresPerTask(node)
    tasks = [ListTask(side, [("b", [1])], p=0), ListTask(side, [("c", [2])], p=1)]
    values = stage_strategy(stage, poison(), stores, lambda tp: 0).run(T, {side: []}, tasks)
    held = {p: dict(keyed_items(store)) for p, store in stores.by_partition.items()}
    assert {k: v for k, v in held[0].items() if k != "a"} == {"b": 1}
    assert {k: v for k, v in held[1].items() if k != "a"} == {"c": 2}
    # the initial state of "a" only in the store of the partition that owns it
    assert ["a" in held[p] for p in (0, 1)] == [owner(p, 2)("a") for p in (0, 1)]
    assert sorted(sink_values(values, stage)) == [("a", 9), ("b", 1), ("c", 2)]


def test_late_records_of_a_stateful_stage_become_the_tasks_dead_letters():
    stage, side = stateful_stage(
        lambda s: s.reduce_by_key_and_session(operator.add, 2.0, late="dlq")
    )
    (node,) = [n for n in stage.nodes if n.op.kind == "reduce_by_key_and_session"]
    strategy = stage_strategy(stage, poison(), StoresPerTask(node), lambda tp: 0)
    strategy.run(T + 1000, {side: []}, [ListTask(side, [("a", 1)], t=T + 1000)])
    late = ListTask(side, [("a", 5)], t=T)
    strategy.run(T, {side: []}, [late])
    (letter,) = late.letters
    assert (letter.reason, letter.value) == ("late", repr(("a", 5)).encode())
    assert "older than its key's open session" in letter.message


# -- sinks ---------------------------------------------------------------------------------
def test_a_failing_sink_makes_the_whole_batch_poison_undoes_its_state_and_runs_it_again():
    written = []

    def sink(records):
        written.append(sorted(records))
        if records:
            raise ConnectionError("cannot write")

    stage, side = stateful_stage(lambda s: s.update_state_by_key(failing_on_bad), sink)
    (node,) = [n for n in stage.nodes if n.op.kind == "update_state_by_key"]
    stores = StoresPerTask(node)
    strategy = stage_strategy(stage, poison(), stores, lambda tp: 0)
    tasks = [ListTask(side, [("a", [1])], p=0), ListTask(side, [("b", [2])], p=1)]
    strategy.run(T, {side: []}, tasks)
    assert written == [[("a", 1), ("b", 2)], []]  # the second time without the records
    assert [offsets(task) for task in tasks] == [[(0, "function")], [(0, "function")]]
    assert all(task.letters[0].error_type == "ConnectionError" for task in tasks)
    assert [dict(keyed_items(s)) for s in stores.by_partition.values()] == [{}, {}]


def test_a_sink_that_fails_even_without_records_stops_the_worker():
    def sink(records):
        raise ConnectionError("cannot write")

    stage, side = stateful_stage(lambda s: s.update_state_by_key(failing_on_bad), sink)
    (node,) = [n for n in stage.nodes if n.op.kind == "update_state_by_key"]
    strategy = stage_strategy(stage, poison(), StoresPerTask(node), lambda tp: 0)
    with pytest.raises(PoisonRecordError, match="on the sinks of batch 10000"):
        strategy.run(T, {side: []}, [ListTask(side, [("a", [1])])])


# -- the runner ------------------------------------------------------------------------------
def test_the_runner_chooses_a_stages_strategy_once():
    app = kstream.App("p", batch_interval=1.0)
    app.stream("lines").map(int).to("out")
    plan = compile_plan(app)
    (stage,) = build_stages(plan, app.interval_ms, app.settings, {"lines": 1}, {})
    runner = BatchRunner(poison(), stores=None)
    chosen = runner.strategy(stage)
    assert isinstance(chosen, WithSinks) and isinstance(chosen.body, StatelessBody)
    assert runner.strategy(stage) is chosen
