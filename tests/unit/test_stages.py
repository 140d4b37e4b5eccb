"""A source stage hands out due batches one at a time when asked to: the worker stops
between batches, and a batch it did not take stays due, not closed (its records and the
commit's closings must not say it was processed). An exchange stage's partitions catching
up take a batch in separate runs, each with the markers that came for it."""

from __future__ import annotations

import operator

from confluent_kafka import Message

import kstream
from kstream.kafka import exchange
from kstream.plan import compile_plan
from kstream.progress import Closings
from kstream.stages import ExchangeStage, SourceStage
from tests.unit.offline import CODEC, msg

TOPIC = "in"


def source_stage() -> SourceStage:
    app = kstream.App("stages", batch_interval=1.0, allowed_lateness=0)
    app.stream(TOPIC).map(str.upper).to("out")
    return SourceStage(compile_plan(app).stages[0], 1000, app.settings)


def records(partition: int, stamps: list[int], first_offset: int = 0) -> list[Message]:
    return [
        Message(
            topic=TOPIC, partition=partition, offset=first_offset + i, value=b"x", timestamp=(1, ts)
        )
        for i, ts in enumerate(stamps)
    ]


def test_a_limit_of_one_closes_one_batch_per_call_and_leaves_the_rest_open():
    stage = source_stage()
    tp = (TOPIC, 0)
    stage.assign([tp])
    stage.ingest(TOPIC, records(0, [500, 1500, 2500, 3500]), now_ms=10_000)
    stage.reached_end(tp, 4)
    times = []
    while runs := stage.due(10_000, limit=1):
        assert len(runs) == 1
        t, tps = runs[0]
        assert tps == (tp,)
        assert stage.tasks[tp].closed_through == t  # closed through the batch taken, no further
        assert stage.commit_offsets()[tp] == len(times)  # the rest is not committed
        stage.take(t, tps)
        times.append(t)
        if t == 4000:
            break
    assert times == [1000, 2000, 3000, 4000]


def test_a_batch_left_due_is_not_in_the_commits_closings():
    stage = source_stage()
    tp = (TOPIC, 0)
    stage.assign([tp])
    stage.ingest(TOPIC, records(0, [500, 1500, 2500]), now_ms=10_000)
    stage.reached_end(tp, 3)
    ((t, tps),) = stage.due(10_000, limit=1)
    stage.take(t, tps)
    offset = stage.commit_offsets()[tp]
    closings = Closings.parse(stage.progress(tp, offset))
    assert offset == 1 and closings is not None
    # the next owner processes the records of 2000 and 3000 again: none was processed
    assert closings.processed_before(2000) == 0
    assert closings.processed_before(3000) == 0


def test_a_partition_catching_up_does_so_one_batch_per_call():
    stage = source_stage()
    a, b = (TOPIC, 0), (TOPIC, 1)
    stage.assign([a])
    stage.ingest(TOPIC, records(0, [3500]), now_ms=10_000)
    stage.reached_end(a, 1)
    ((t, tps),) = stage.due(4000, limit=1)  # the stage starts at a's first batch
    assert (t, tps) == (4000, (a,))
    stage.take(t, tps)
    # b joins with records of batches the stage has closed: it catches up on its own
    stage.assign([b])
    stage.ingest(TOPIC, records(1, [1500, 2500, 3500]), now_ms=10_000)
    stage.reached_end(b, 3)
    taken = []
    for _ in range(3):
        ((t, tps),) = stage.due(4000, limit=1)
        assert tps == (b,) and stage.tasks[b].closed_through == t
        stage.take(t, tps)
        taken.append(t)
    assert taken == [2000, 3000, 4000]
    assert stage.due(4000, limit=1) == []


def test_without_a_limit_every_due_batch_comes_at_once():
    stage = source_stage()
    tp = (TOPIC, 0)
    stage.assign([tp])
    stage.ingest(TOPIC, records(0, [500, 1500, 2500]), now_ms=10_000)
    stage.reached_end(tp, 3)
    assert [t for t, _ in stage.due(3000)] == [1000, 2000, 3000]


def exchange_stage() -> tuple[ExchangeStage, str]:
    """The stage after a word count's shuffle, two upstream tasks writing its topic."""
    app = kstream.App("stages", batch_interval=1.0)
    app.stream(TOPIC).map(lambda w: (w, 1)).reduce_by_key(operator.add).to("out")
    stage = compile_plan(app).stages[1]
    (topic,) = stage.input_topics()
    return ExchangeStage(stage, 1000, app.settings, {topic: 2}, {topic: CODEC}), topic


def join_stage() -> tuple[ExchangeStage, str]:
    """The stage after a join of two word counts: its topic's side 0 is written by the
    tasks of the left count, side 1 by those of the right one (one upstream task each)."""
    app = kstream.App("stages", batch_interval=1.0)
    left = app.stream("a").map(lambda w: (w, 1)).reduce_by_key(operator.add)
    right = app.stream("b").map(lambda w: (w, 1)).reduce_by_key(operator.add)
    left.join(right).to("out")
    stage = compile_plan(app).stages[2]
    (topic,) = stage.input_topics()
    return ExchangeStage(stage, 1000, app.settings, {topic: 2}, {topic: CODEC}), topic


class Partition:
    """A partition of the repartition topic as upstream runs write it: each run's frames
    of its side, then its marker (which says upstream wrote that side in the batch)."""

    def __init__(self, stage: ExchangeStage, topic: str, p: int):
        self.stage, self.topic, self.p, self.offset = stage, topic, p, 0

    def run(self, t: int, writer: int, words: list[str], upstream: list, side: int = 0) -> None:
        values = [exchange.encode(t, side, [(w, 1)], writer, CODEC) for w in words]
        values.append(exchange.encode_marker(t, tuple(upstream), (side,), writer, CODEC))
        msgs = [
            msg(self.topic, self.p, self.offset + i, v, ts=t, headers=CODEC.headers)
            for i, v in enumerate(values)
        ]
        self.offset += len(msgs)
        self.stage.ingest(self.topic, msgs, 0)


def test_partitions_catching_up_a_batch_in_separate_runs_each_keep_their_finished_runs():
    # the stage closed batch T on partition 0; partitions 1 and 2 join later, behind it,
    # and partition 2's markers of T come in two fetches, either side of partition 1's run
    T = 10_000
    L0, L1 = (TOPIC, 0), (TOPIC, 1)  # the upstream tasks; runs 1 and 2 are theirs
    stage, topic = exchange_stage()
    p0, p1, p2 = (Partition(stage, topic, p) for p in range(3))
    stage.assign([(topic, 0)])
    p0.run(T, 1, ["a"], [L0])
    p0.run(T, 2, ["b"], [L1])
    assert stage.due(0, limit=1) == [(T, ((topic, 0),))]
    stage.take(T, ((topic, 0),))
    stage.assign([(topic, 1), (topic, 2)])
    p1.run(T, 1, ["c"], [L0])
    p1.run(T, 2, ["d"], [L1])
    p2.run(T, 1, ["e"], [L0])  # its L1 marker is not read yet: its watermark is not at T
    assert stage.due(0, limit=1) == [(T, ((topic, 1),))]
    _, (task,) = stage.take(T, ((topic, 1),))
    assert [row[3] for row in task.rows] == [1, 2]
    p2.run(T, 2, ["f"], [L1])
    assert stage.due(0, limit=1) == [(T, ((topic, 2),))]
    template, (task,) = stage.take(T, ((topic, 2),))
    # both runs of T finished on partition 2: none of its records belongs to a lost run
    assert [row[3] for row in task.rows] == [1, 2]
    # and upstream wrote the side in batch T: a task without records of it reads [] there
    assert list(template.values()) == [[]]
    assert stage.abandoned == 0
    assert stage.due(0, limit=1) == []
    assert [task.finished for task in stage.tasks.values()] == [{}, {}, {}]  # none kept


def test_a_partition_catching_up_a_join_reads_empty_for_a_side_marked_before_another_run():
    # the stage closed batch T on partition 0; partitions 1 and 2 join later, behind it.
    # Partition 2 reads the left task's marker of T (no records) before partition 1's
    # run of T, the right task's after it: its own run still knows the left side wrote
    T = 10_000
    LEFT, RIGHT = ("left", 0), ("right", 0)  # the upstream tasks; runs 1 and 2 are theirs
    stage, topic = join_stage()
    p0, p1, p2 = (Partition(stage, topic, p) for p in range(3))
    stage.assign([(topic, 0)])
    p0.run(T, 1, ["a"], [LEFT], side=0)
    p0.run(T, 2, ["a"], [RIGHT], side=1)
    assert stage.due(0, limit=1) == [(T, ((topic, 0),))]
    stage.take(T, ((topic, 0),))
    stage.assign([(topic, 1), (topic, 2)])
    p1.run(T, 1, ["b"], [LEFT], side=0)
    p1.run(T, 2, ["b"], [RIGHT], side=1)
    p2.run(T, 1, [], [LEFT], side=0)
    assert stage.due(0, limit=1) == [(T, ((topic, 1),))]
    stage.take(T, ((topic, 1),))
    p2.run(T, 2, ["c"], [RIGHT], side=1)
    assert stage.due(0, limit=1) == [(T, ((topic, 2),))]
    template, (task,) = stage.take(T, ((topic, 2),))
    assert [row[:2] for row in task.rows] == [(1, ("c", 1))]
    # both sides were written in T: the left one is empty here, not "no result"
    assert list(template.values()) == [[], []]
    assert stage.emitted == {}  # every partition took T: nothing of it is kept
    # its right marker announced T again after the stage ran it: T is not run again
    assert stage.due(0) == []


def test_a_revoked_partition_behind_the_stage_keeps_nothing_of_its_batches():
    T = 10_000
    LEFT, RIGHT = ("left", 0), ("right", 0)
    stage, topic = join_stage()
    p0, p1 = Partition(stage, topic, 0), Partition(stage, topic, 1)
    stage.assign([(topic, 0)])
    p0.run(T, 1, ["a"], [LEFT], side=0)
    p0.run(T, 2, ["a"], [RIGHT], side=1)
    assert stage.due(0, limit=1) == [(T, ((topic, 0),))]
    stage.assign([(topic, 1)])
    p1.run(T, 1, [], [LEFT], side=0)  # behind: the right task's marker of T not read yet
    stage.take(T, ((topic, 0),))
    assert set(stage.emitted) == {T}  # partition 1 has still to run T
    stage.revoke([(topic, 1)])
    p0.run(T + 1000, 1, [], [LEFT], side=0)
    p0.run(T + 1000, 2, ["b"], [RIGHT], side=1)
    assert stage.due(0, limit=1) == [(T + 1000, ((topic, 0),))]
    template, _ = stage.take(T + 1000, ((topic, 0),))
    assert list(template.values()) == [[], []]
    assert stage.emitted == {}  # T went with the partition that was behind
