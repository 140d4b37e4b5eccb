"""PartitionTask: one partition's reading, open batches, closings and commit within its
stage; whether a record is new, late or processed already; and a revoke that drops it."""

from __future__ import annotations

import operator

import kstream
from kstream.clocks import MarkerPartitionClock, SourceClock
from kstream.progress import Closings
from kstream.stages.exchange import ExchangePartitionTask
from kstream.stages.partition_task import Arrival, PartitionTask
from tests.unit.offline import frame_msg, marker_msg, msg, offline_worker

P0, P1 = ("in", 0), ("in", 1)
T = 10_000


def task(handed: Closings | None = None) -> PartitionTask:
    return PartitionTask(P0, SourceClock(0).partition(), handed)


def read(task: PartitionTask, offset: int, t: int, value: str) -> None:
    """What a stage does per record: bucket it, then advance the partition's position."""
    task.bucket(t, offset).append(value)
    task.advance(offset + 1)


# -- open batches and the offset to commit -----------------------------------------------
def test_nothing_read_nothing_to_commit():
    tk = task()
    assert tk.commit_offset() is None
    assert tk.open_times() == []


def test_records_are_grouped_by_batch():
    tk = task()
    read(tk, 0, 1000, "a")
    read(tk, 1, 1000, "b")
    read(tk, 2, 2000, "c")
    assert tk.open_times() == [1000, 2000]
    assert tk.take(1000) == ["a", "b"]
    assert tk.take(2000) == ["c"]
    assert tk.open_times() == []
    assert tk.take(5000) is None  # a batch it holds nothing of


def test_commit_is_the_lowest_offset_not_in_a_processed_batch():
    tk = task()
    read(tk, 10, 1000, "a")
    read(tk, 11, 1000, "b")
    read(tk, 12, 2000, "c")
    assert tk.commit_offset() == 10  # nothing processed: where its open records start
    tk.take(1000)
    assert tk.commit_offset() == 12
    tk.take(2000)
    assert tk.commit_offset() == 13  # everything read is processed: the next to read


def test_interleaved_batches_hold_back_the_commit():
    # a late record: offset 2 belongs to batch 1000 after offset 1 opened batch 2000
    tk = task()
    read(tk, 0, 1000, "a")
    read(tk, 1, 2000, "b")
    read(tk, 2, 1000, "late")
    assert tk.take(1000) == ["a", "late"]
    assert tk.commit_offset() == 1  # offset 1 is still in the open batch 2000
    tk.take(2000)
    assert tk.commit_offset() == 3


def test_processing_a_later_batch_first_does_not_skip_an_earlier_one():
    tk = task()
    read(tk, 0, 1000, "a")
    read(tk, 1, 2000, "b")
    tk.take(2000)
    assert tk.commit_offset() == 0


def test_a_caught_up_partition_commits_its_position():
    tk = task()
    tk.advance(42)  # read to its end at 42, nothing open
    assert tk.commit_offset() == 42


def test_a_record_for_a_taken_batch_opens_it_again():
    tk = task()
    read(tk, 0, 1000, "a")
    tk.take(1000)
    read(tk, 1, 1000, "b")
    assert tk.commit_offset() == 1
    assert tk.take(1000) == ["b"]
    assert tk.commit_offset() == 2


# -- new, late or processed --------------------------------------------------------------
def test_a_record_is_new_until_its_batch_closes_and_late_after():
    tk = task()
    assert tk.arrival(1000, 0) is Arrival.NEW
    tk.advance(1)
    tk.close_through(2000)
    assert tk.arrival(1000, 5) is Arrival.LATE
    assert tk.arrival(2000, 5) is Arrival.LATE
    assert tk.arrival(3000, 5) is Arrival.NEW


def test_what_the_previous_owner_processed_above_its_commit_is_processed():
    # it closed batch 1000 with offsets 0..2 read, and batch 2000 with 0..6
    handed = Closings(None, [(1000, 3), (2000, 7)])
    tk = task(handed)
    assert tk.closed_through == 2000
    assert tk.arrival(1000, 2) is Arrival.PROCESSED
    assert tk.arrival(1000, 3) is Arrival.LATE  # came after its batch closed: late then too
    assert tk.arrival(2000, 6) is Arrival.PROCESSED
    assert tk.arrival(3000, 6) is Arrival.NEW
    tk.advance(7)  # past its last closing: nothing read from here was processed
    assert tk.handed is None
    assert tk.arrival(3000, 7) is Arrival.NEW


def test_handed_closings_without_entries_only_say_what_closed():
    tk = task(Closings(1000, []))
    assert tk.closed_through == 1000 and tk.handed is None
    assert tk.arrival(1000, 0) is Arrival.LATE
    assert tk.arrival(2000, 0) is Arrival.NEW


def test_what_the_restored_state_holds_is_processed():
    tk = task()
    tk.restored_through = (2000, 5)  # its stores hold batches through 2000, input below 5
    assert tk.arrival(2000, 4) is Arrival.PROCESSED
    assert tk.arrival(1000, 0) is Arrival.PROCESSED
    assert tk.arrival(2000, 5) is Arrival.NEW  # read after: not in the state
    assert tk.arrival(3000, 4) is Arrival.NEW  # a later batch: not in the state


def test_closings_say_at_which_position_each_batch_closed():
    tk = task()
    read(tk, 0, 1000, "a")
    read(tk, 1, 2000, "b")
    tk.close_through(1000)
    tk.take(1000)
    tk.close_through(1000)  # again: nothing new
    assert tk.closed_through == 1000
    closings = Closings.parse(tk.progress(tk.commit_offset()))
    assert closings is not None and closings.processed_before(1000) == 2
    assert closings.processed_before(2000) == 0  # batch 2000 is open: nothing of it processed


def test_a_partition_that_closed_nothing_commits_empty_metadata():
    tk = task()
    read(tk, 0, 1000, "a")
    assert tk.progress(0) == ""


# -- in a stage ----------------------------------------------------------------------------
def source_stage():
    app = kstream.App("pt", batch_interval=1.0, allowed_lateness=0)
    app.stream("in").map(str.upper).to("out")
    w = offline_worker(app, {"in": 2, "out": 1})
    return w.stages[0]


def test_a_stage_holds_one_task_per_assigned_partition_and_revoke_drops_it():
    stage = source_stage()
    stage.assign([P0, P1])
    stage.ingest("in", [msg("in", 0, 0, b"a", ts=500), msg("in", 1, 0, b"b", ts=9_500)], 0)
    assert stage.assigned == {P0, P1}
    assert stage.watermark(0) == 500  # P0 holds it back
    assert stage.commit_offsets() == {P0: 0, P1: 0}
    stage.revoke([P0])
    assert stage.assigned == {P1}
    # its records, position, closings and part of the watermark went with it
    assert stage.commit_offsets() == {P1: 0}
    assert stage.positions() == {P1: 1}
    assert stage.watermark(0) == 9_500
    assert stage.open_times() == [10_000]
    stage.assign([P0])  # given back: it starts afresh from its committed offset
    assert stage.commit_offsets() == {P1: 0}
    assert stage.position(P0) == 0


def test_a_stage_files_nothing_of_a_partition_it_does_not_hold():
    stage = source_stage()
    stage.assign([P0])
    stage.ingest("in", [msg("in", 1, 0, b"b", ts=500)], 0)  # fetched before a revoke
    stage.reached_end(P1, 1)
    assert stage.assigned == {P0}
    assert stage.positions() == {}
    assert stage.open_times() == []


def test_a_stage_places_late_records_in_the_oldest_open_batch():
    stage = source_stage()
    stage.assign([P0])
    stage.ingest("in", [msg("in", 0, 0, b"a", ts=500), msg("in", 0, 1, b"b", ts=2500)], 0)
    ((t, tps),) = stage.due(1000, limit=1)
    stage.take(t, tps)
    stage.ingest("in", [msg("in", 0, 2, b"late", ts=600)], 0)
    assert stage.late == 1
    assert stage.tasks[P0].open_times() == [2000, 3000]  # after the batch closed through


TOPIC = "pt--reduce_by_key.add--repartition"


def exchange_stage():
    app = kstream.App("pt", batch_interval=1.0)
    app.stream("in").map(lambda w: (w, 1)).reduce_by_key(operator.add).to("out")
    w = offline_worker(app, {"in": 1, "out": 1})
    return w.stages[1]


def test_a_repartition_partition_skips_what_its_restored_state_holds():
    stage = exchange_stage()
    tp = (TOPIC, 0)
    stage.assign_restored(tp, {}, (T, 2))
    tasks = (("in", 0),)
    stage.ingest(
        TOPIC,
        [
            frame_msg(TOPIC, 0, 0, T, [("a", 1)], 1),  # in the state
            marker_msg(TOPIC, 0, 1, T, tasks, 1),
            frame_msg(TOPIC, 0, 2, T, [("b", 1)], 2),  # its run came after the state's
            marker_msg(TOPIC, 0, 3, T, tasks, 2),
        ],
        0,
    )
    assert stage.late == 0 and stage.tasks[tp].open_times() == [T]
    ((t, tps),) = stage.due(0)
    _, (batch,) = stage.take(t, tps)
    assert [payload for _, payload, _, _ in batch.rows] == [("b", 1)]


def test_a_repartition_partition_forgets_its_markers_when_revoked():
    stage = exchange_stage()
    tp = (TOPIC, 0)
    stage.assign([tp])
    stage.ingest(TOPIC, [marker_msg(TOPIC, 0, 0, T, (("in", 0),), 1)], 0)
    assert stage.watermark(0) == T
    assert stage.tasks[tp].finished == {T: {1}}
    stage.revoke([tp])
    assert stage.watermark(0) is None
    stage.assign([tp])
    assert stage.tasks[tp].finished == {} and stage.watermark(0) is None


def test_an_exchange_task_keeps_the_markers_of_a_closed_batch_until_its_records_are_taken():
    x = ExchangePartitionTask(("p--repartition", 0), MarkerPartitionClock(1))
    x.bucket(1000, 0).append("record of run 7")
    x.marker(1000, ["up-0"], 7)
    x.marker(2000, ["up-0"], 7)  # a batch with no records here
    x.close_through(2000)
    x.forget_closed()
    assert x.finished == {1000: {7}}  # still to be taken: which runs finished counts then
    x.take(1000)
    x.forget_closed()
    assert x.finished == {}
    x.marker(2000, ["up-0"], 8)  # closed here: nothing to remember
    assert x.finished == {}
