"""Batch alignment, watermarks and the closer (docs/design.md §2). Times in milliseconds."""

from __future__ import annotations

import pytest

from kstream.clocks import NEVER, Closer, MarkerClock, SourceClock, SourcePartitionClock, batch_of


# -- batch_of -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("ts", "interval", "batch"),
    [
        (0, 1000, 1000),
        (1, 1000, 1000),
        (999, 1000, 1000),
        (1000, 1000, 2000),  # T - I <= t < T: the end of an interval starts the next batch
        (1999, 1000, 2000),
        (12345, 1000, 13000),
        (1500, 500, 2000),
        (1499, 500, 1500),
        (1_700_000_000_123, 250, 1_700_000_000_250),
    ],
)
def test_batch_of(ts, interval, batch):
    assert batch_of(ts, interval) == batch


# -- Closer, every=True ---------------------------------------------------------------
def test_nothing_closes_without_a_watermark():
    c = Closer(1000, max_empty=60)
    assert c.due(None, [1000, 2000], every=True) == []
    assert c.due(None, [1000], every=False) == []
    assert c.closed_through is None
    assert not c.is_late(1000)


def test_first_batches_start_at_the_first_pending_one():
    c = Closer(1000, max_empty=60)
    assert c.due(5000, [3000, 4000], every=True) == [3000, 4000, 5000]
    assert c.closed_through == 5000


def test_a_pending_batch_beyond_the_watermark_waits():
    c = Closer(1000, max_empty=60)
    assert c.due(2500, [3000], every=True) == []
    assert c.due(2999, [3000], every=True) == []
    assert c.due(3000, [3000], every=True) == [3000]
    assert c.due(5000, [], every=True) == [4000, 5000]


def test_without_data_the_first_batch_is_the_watermarks():
    c = Closer(1000, max_empty=60)
    assert c.due(2500, [], every=True) == [2000]
    assert c.due(2999, [], every=True) == []
    assert c.due(4000, [], every=True) == [3000, 4000]


def test_every_interval_closes_empty_batches_between_data():
    c = Closer(1000, max_empty=60)
    assert c.due(5500, [1000, 3000], every=True) == [1000, 2000, 3000, 4000, 5000]


def test_an_unaligned_watermark_closes_through_the_batch_below_it():
    c = Closer(500, max_empty=60)
    assert c.due(1700, [500], every=True) == [500, 1000, 1500]
    assert c.due(1999, [], every=True) == []
    assert c.due(2000, [], every=True) == [2000]


def test_a_live_stream_emits_every_interval_empty_or_not():
    c = Closer(1000, max_empty=2)
    assert c.due(1000, [1000], every=True) == [1000]
    for t in range(2000, 10001, 1000):  # one interval per call: never an "idle gap"
        assert c.due(t, [], every=True) == [t]
    assert c.skipped_empty == 0


def test_an_idle_gap_longer_than_max_empty_is_compressed():
    c = Closer(1000, max_empty=2)
    # 1000 has data; 2000..9000 are empty; 10000 has data.
    assert c.due(10500, [1000, 10000], every=True) == [1000, 2000, 3000, 10000]
    assert c.skipped_empty == 6  # 4000..9000
    assert c.closed_through == 10000


def test_an_idle_gap_at_the_end_jumps_to_the_newest_due_batch():
    c = Closer(1000, max_empty=3)
    assert c.due(10000, [1000], every=True) == [1000, 2000, 3000, 4000, 10000]
    assert c.skipped_empty == 5  # 5000..9000
    assert c.due(11000, [], every=True) == [11000]


def test_a_gap_of_exactly_max_empty_is_not_compressed():
    c = Closer(1000, max_empty=2)
    assert c.due(4000, [1000, 4000], every=True) == [1000, 2000, 3000, 4000]
    assert c.skipped_empty == 0


def test_two_idle_gaps_in_one_backlog():
    c = Closer(1000, max_empty=1)
    got = c.due(20000, [1000, 5000, 6000, 20000], every=True)
    assert got == [1000, 2000, 5000, 6000, 7000, 20000]
    assert c.skipped_empty == 2 + 12  # 3000..4000 and 8000..19000


# -- Closer, every=False --------------------------------------------------------------
def test_only_pending_batches_close_when_not_every():
    c = Closer(1000, max_empty=60)
    assert c.due(6000, [2000, 5000, 9000], every=False) == [2000, 5000]
    assert c.closed_through == 5000
    assert c.due(8999, [9000], every=False) == []
    assert c.due(9000, [5000, 9000], every=False) == [9000]
    assert c.due(12000, [], every=False) == []
    assert c.closed_through == 9000


def test_is_late():
    c = Closer(1000, max_empty=60)
    c.due(3000, [1000], every=True)
    assert c.is_late(1000)
    assert c.is_late(3000)
    assert not c.is_late(4000)


# -- SourceClock ----------------------------------------------------------------------
def source_partitions(clock: SourceClock, n: int) -> list[SourcePartitionClock]:
    return [clock.partition() for _ in range(n)]


def test_source_clock_without_partitions_has_no_watermark():
    clock = SourceClock(500)
    assert clock.watermark([], 10_000) is None


def test_source_clock_waits_for_every_partition():
    clock = SourceClock(500)
    p0, p1 = parts = source_partitions(clock, 2)
    assert clock.watermark(parts, 10_000) is None
    p0.saw(5000)
    assert clock.watermark(parts, 10_000) is None  # p1 has neither data nor end of partition
    p1.saw(3000)
    assert clock.watermark(parts, 10_000) == 2500  # min(5000, 3000) - 500


def test_source_clock_min_over_partitions_that_are_behind():
    clock = SourceClock(500)
    p0, p1, p2 = parts = source_partitions(clock, 3)
    p0.saw(5000)
    p1.saw(3000)
    p2.saw(8000)
    assert clock.watermark(parts, 0) == 2500
    p1.reached_end()
    assert clock.watermark(parts, 0) == 4500  # p1 is caught up: min over p0 and p2
    p0.reached_end()
    assert clock.watermark(parts, 0) == 7500


def test_a_caught_up_partition_without_data_does_not_hold_the_watermark():
    clock = SourceClock(0)
    p0, p1 = parts = source_partitions(clock, 2)
    p1.reached_end()
    assert clock.watermark(parts, 10_000) is None  # p0 not fetched yet
    p0.saw(2000)
    assert clock.watermark(parts, 10_000) == 2000


def test_source_clock_uses_the_wall_clock_once_all_caught_up():
    clock = SourceClock(500)
    p0, p1 = parts = source_partitions(clock, 2)
    p0.saw(5000)
    p1.saw(3000)
    p0.reached_end()
    p1.reached_end()
    assert clock.watermark(parts, 100_000) == 99_500
    assert clock.watermark(parts, 100_700) == 100_200
    # a wall clock behind the newest timestamp does not move the watermark back
    assert clock.watermark(parts, 1000) == 4500


def test_source_clock_all_caught_up_without_any_data():
    clock = SourceClock(250)
    (p0,) = parts = source_partitions(clock, 1)
    p0.reached_end()
    assert clock.watermark(parts, 42_000) == 41_750


def test_new_data_puts_a_partition_behind_again():
    clock = SourceClock(500)
    p0, p1 = parts = source_partitions(clock, 2)
    p0.saw(5000)
    p1.saw(3000)
    p0.reached_end()
    p1.reached_end()
    p1.saw(6000)
    assert clock.watermark(parts, 100_000) == 5500  # p1 behind: its newest rules, not the wall


def test_source_clock_keeps_the_newest_timestamp():
    clock = SourceClock(0)
    (p0,) = parts = source_partitions(clock, 1)
    p0.saw(5000)
    p0.saw(4000)  # an out-of-order record
    assert clock.watermark(parts, 0) == 5000


def test_source_clock_is_over_the_partitions_it_is_given():
    # a revoked partition's clock goes with its task: the stage no longer passes it in
    clock = SourceClock(0)
    p0, p1 = source_partitions(clock, 2)
    p0.saw(9000)
    p1.saw(1000)
    assert clock.watermark([p0, p1], 0) == 1000
    assert clock.watermark([p0], 0) == 9000
    assert clock.watermark([], 0) is None


def test_a_source_partitions_own_watermark():
    p = SourceClock(500).partition()
    assert p.watermark() is None  # nothing read: its records may be the oldest
    p.saw(3000)
    assert p.watermark() == 2500
    p.reached_end()
    assert p.watermark() == NEVER  # read to its end: it holds no batch back
    p.saw(4000)
    assert p.watermark() == 3500


# -- MarkerClock ----------------------------------------------------------------------
def test_marker_clock_needs_every_upstream_task():
    clock = MarkerClock({"rep": 2})
    assert clock.watermark([]) is None
    r0, r1 = clock.partition("rep"), clock.partition("rep")
    assert clock.watermark([r0, r1]) is None
    r0.marker(1000, [0])
    assert r0.watermark() is None  # task 1 has not passed 1000 yet
    r0.marker(1000, [1])
    assert r0.watermark() == 1000
    assert clock.watermark([r0, r1]) is None  # r1 has no markers
    r1.marker(2000, [0, 1])
    assert r1.watermark() == 2000
    assert clock.watermark([r0, r1]) == 1000  # min over partitions


def test_marker_clock_min_over_tasks_and_partitions():
    clock = MarkerClock({"rep": 2})
    r0, r1 = clock.partition("rep"), clock.partition("rep")
    r0.marker(1000, [0, 1])
    r1.marker(2000, [0, 1])
    r0.marker(3000, [0])
    assert r0.watermark() == 1000  # task 1 is still at 1000
    r0.marker(3000, [1])
    assert r0.watermark() == 3000
    assert clock.watermark([r0, r1]) == 2000
    r0.marker(2000, [0])  # an older marker does not move it back
    assert r0.watermark() == 3000


def test_marker_clock_per_topic_task_counts():
    clock = MarkerClock({"a": 1, "b": 3})
    a0, b0 = clock.partition("a"), clock.partition("b")
    a0.marker(4000, ["t0"])
    b0.marker(4000, ["t0", "t1"])
    assert clock.watermark([a0, b0]) is None
    b0.marker(5000, ["t2"])
    assert b0.watermark() == 4000
    assert clock.watermark([a0, b0]) == 4000


def test_marker_clock_pending_batches():
    clock = MarkerClock({"rep": 1})
    clock.announce(1000)
    clock.announce(3000)
    assert clock.pending([2000, 3000, 5000]) == [1000, 2000, 3000, 5000]
    clock.forget_through(2000)
    assert clock.pending([]) == [3000]


def test_a_limit_closes_that_many_and_leaves_the_rest_due():
    c = Closer(1000, max_empty=60)
    assert c.due(5000, [1000, 3000], every=True, limit=2) == [1000, 2000]
    assert c.closed_through == 2000
    assert c.due(5000, [1000, 3000], every=True, limit=2) == [3000, 4000]
    assert c.due(5000, [1000, 3000], every=True, limit=2) == [5000]
    assert c.due(5000, [], every=True, limit=0) == []


def test_an_idle_gap_closed_one_batch_at_a_time_is_still_compressed():
    c = Closer(1000, max_empty=2)
    got = []
    while out := c.due(10500, [1000, 10000], every=True, limit=1):
        got += out
    assert got == [1000, 2000, 3000, 10000]
    assert c.skipped_empty == 6


def test_announced_batches_come_a_limited_number_at_a_time():
    c = Closer(1000, max_empty=60)
    assert c.due(5000, [2000, 3000, 5000], every=False, limit=2) == [2000, 3000]
    assert c.due(5000, [2000, 3000, 5000], every=False, limit=2) == [5000]
