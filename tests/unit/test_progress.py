"""The closings a commit carries beyond its offset (kstream/progress.py): the next owner
of a partition does not process again a record processed above the committed offset."""

from __future__ import annotations

import kstream
from kstream.checkpoint import commit_offsets
from kstream.progress import MAX_ENTRIES, Closings
from tests.unit.offline import frame_msg, marker_msg, msg, offline_worker

T = 10_000
TP = ("lines", 0)


def test_closings_say_below_which_offset_a_batch_was_processed():
    c = Closings()
    c.closed(T, 3)  # batches through T closed with offsets 0..2 read
    c.closed(T + 2000, 7)
    assert c.closed_through == T + 2000
    assert [c.processed_before(t) for t in (T - 1000, T, T + 1000, T + 2000, T + 3000)] == [
        3,
        3,
        7,
        7,
        0,
    ]


def test_a_commit_keeps_only_the_closings_above_its_offset():
    c = Closings()
    c.closed(T, 3)
    c.closed(T + 1000, 5)
    meta = c.committed(4)  # offsets 0..3 done with: T closed before any record above
    back = Closings.parse(meta)
    assert back is not None and back.floor == T and back.entries == [(T + 1000, 5)]
    assert back.closed_through == T + 1000
    assert back.processed_before(T) == 0  # a record of T at 4 came after T closed: late
    assert back.processed_before(T + 1000) == 5


def test_closings_at_one_position_merge_and_the_oldest_give_way_past_the_cap():
    c = Closings()
    c.closed(T, 3)
    c.closed(T + 1000, 3)  # nothing read in between: one closing
    assert c.entries == [(T + 1000, 3)]
    for i in range(2, MAX_ENTRIES + 10):
        c.closed(T + i * 1000, 3 + i)
    meta = c.committed(0)
    assert len(meta) < 4096  # Kafka's default offset.metadata.max.bytes
    back = Closings.parse(meta)
    assert len(back.entries) == MAX_ENTRIES
    # the forgotten closings' batches count as closed before the commit: their records
    # above it are processed again (twice, never lost)
    assert back.processed_before(back.floor) == 0


def test_metadata_not_ours_is_no_closings():
    assert Closings.parse(None) is None
    assert Closings.parse("") is None
    assert Closings.parse("someone else's") is None
    assert Closings.parse("ks1 x 1:2") is None
    assert Closings.parse("ks1 ") is not None  # nothing closed yet


def upper(monkeypatch, tmp_path):
    app = kstream.App("p", batch_interval=1.0, state_dir=str(tmp_path))
    app.stream("lines").map(str.upper).to("out")
    w = offline_worker(app, {"lines": 1, "out": 1})
    return w


def run_due(w, msgs, now_ms=0):
    stage = w.stages[0]
    stage.ingest("lines", msgs, now_ms)
    for t, tps in stage.due(now_ms):
        w.run_batch(stage, t, tps)


def test_the_next_owner_skips_what_its_previous_owner_processed_above_the_commit(
    monkeypatch, tmp_path
):
    a = msg("lines", 0, 0, b"a", ts=T - 500)
    b = msg("lines", 0, 1, b"b", ts=T + 600)  # the next batch, still open
    c = msg("lines", 0, 2, b"c", ts=T - 400)  # batch T again: processed with a
    first = upper(monkeypatch, tmp_path / "1")
    first.stages[0].assign([TP])
    run_due(first, [a, b, c])
    assert [r["value"] for r in first.delivery.producer.to("out")] == [b"A", b"C"]
    (offset,) = commit_offsets(first.stages)
    assert offset.offset == 1  # b's batch is open: the commit cannot pass it

    second = upper(monkeypatch, tmp_path / "2")
    second.stages[0].assign([TP], {TP: Closings.parse(offset.metadata)})
    d = msg("lines", 0, 3, b"d", ts=T - 300)  # batch T, after it closed: late
    e = msg("lines", 0, 4, b"e", ts=T + 1700)  # moves the watermark past b's batch
    run_due(second, [b, c, d, e])  # read again from the committed offset
    assert [r["value"] for r in second.delivery.producer.to("out")] == [b"B", b"D"]
    assert second.stages[0].late == 1  # d, as it would have been for the first owner


def test_without_closings_the_next_owner_processes_them_again(monkeypatch, tmp_path):
    # what a broker that drops commit metadata gets (Tansu): c is processed twice
    a = msg("lines", 0, 0, b"a", ts=T - 500)
    b = msg("lines", 0, 1, b"b", ts=T + 600)
    c = msg("lines", 0, 2, b"c", ts=T - 400)
    second = upper(monkeypatch, tmp_path)
    second.stages[0].assign([TP])
    run_due(second, [b, c, msg("lines", 0, 3, b"e", ts=T + 1700)])
    assert [r["value"] for r in second.delivery.producer.to("out")] == [b"C", b"B"]
    del a


def test_a_stage_after_a_shuffle_drops_the_handed_over_batches(monkeypatch, tmp_path):
    app = kstream.App("p", batch_interval=1.0, state_dir=str(tmp_path))
    app.stream("lines").map(lambda w: (w, 1)).reduce_by_key(lambda x, y: x + y).to("out")
    w = offline_worker(app, {"lines": 1, "out": 1})
    (topic,) = w.exchange_partitions
    tp = (topic, 0)
    stage = w.stages[1]
    # the previous owner closed batch T after reading offsets 0..2 and committed offset 1
    stage.assign([tp], {tp: Closings(None, [(T, 3)])})
    tasks = (TP,)
    msgs = [
        frame_msg(topic, 0, 1, T + 1000, [("b", 1)], 1),
        frame_msg(topic, 0, 2, T, [("a", 1)], 2),  # processed
        marker_msg(topic, 0, 3, T, tasks, 2),
        marker_msg(topic, 0, 4, T + 1000, tasks, 1),
    ]
    stage.ingest(topic, msgs, 0)
    for t, tps in stage.due(0):
        w.run_batch(stage, t, tps)
    assert [(r["timestamp"], r["key"]) for r in w.delivery.producer.to("out")] == [(T + 1000, b"b")]


def test_a_partition_that_closed_nothing_commits_empty_metadata(monkeypatch, tmp_path):
    w = upper(monkeypatch, tmp_path)
    w.stages[0].assign([TP])
    w.stages[0].ingest("lines", [msg("lines", 0, 0, b"a", ts=T - 500)], 0)
    (offset,) = commit_offsets(w.stages)
    assert (offset.offset, offset.metadata) == (0, "")
