"""OpenBatches: records held per batch and partition, and the offsets safe to commit."""

from __future__ import annotations

from kstream.batches import OpenBatches

P0, P1 = ("in", 0), ("in", 1)


def read(ob, tp, offset, t, value):
    """What the worker does per record: bucket it, then advance the partition's position."""
    ob.bucket(t, tp, offset).append(value)
    ob.position[tp] = offset + 1


def test_nothing_read_nothing_to_commit():
    ob = OpenBatches()
    assert ob.commit_offsets() == {}
    assert ob.times() == []


def test_records_are_grouped_by_batch_and_partition():
    ob = OpenBatches()
    read(ob, P0, 0, 1000, "a")
    read(ob, P0, 1, 1000, "b")
    read(ob, P1, 0, 2000, "c")
    read(ob, P0, 2, 2000, "d")
    assert ob.times() == [1000, 2000]
    assert ob.times_of(P0) == [1000, 2000]
    assert ob.times_of(P1) == [2000]
    assert ob.take(1000) == {P0: ["a", "b"]}
    assert ob.take(2000) == {P1: ["c"], P0: ["d"]}
    assert ob.times() == []


def test_commit_is_the_lowest_offset_not_in_a_processed_batch():
    ob = OpenBatches()
    read(ob, P0, 10, 1000, "a")
    read(ob, P0, 11, 1000, "b")
    read(ob, P0, 12, 2000, "c")
    read(ob, P1, 5, 2000, "x")
    # nothing processed: commit where each partition's open records start
    assert ob.commit_offsets() == {P0: 10, P1: 5}
    ob.take(1000)
    assert ob.commit_offsets() == {P0: 12, P1: 5}
    ob.take(2000)
    # everything read is processed: commit the next offset to read
    assert ob.commit_offsets() == {P0: 13, P1: 6}


def test_interleaved_batches_hold_back_the_commit():
    # A late record: offset 2 belongs to batch 1000 after offset 1 opened batch 2000.
    ob = OpenBatches()
    read(ob, P0, 0, 1000, "a")
    read(ob, P0, 1, 2000, "b")
    read(ob, P0, 2, 1000, "late")
    assert ob.take(1000) == {P0: ["a", "late"]}
    assert ob.commit_offsets() == {P0: 1}  # offset 1 is still in the open batch 2000
    ob.take(2000)
    assert ob.commit_offsets() == {P0: 3}


def test_processing_a_later_batch_first_does_not_skip_an_earlier_one():
    ob = OpenBatches()
    read(ob, P0, 0, 1000, "a")
    read(ob, P0, 1, 2000, "b")
    ob.take(2000)
    assert ob.commit_offsets() == {P0: 0}


def test_a_caught_up_partition_commits_its_position():
    ob = OpenBatches()
    ob.position[P1] = 42  # assigned and read up to 42, nothing open
    read(ob, P0, 7, 1000, "a")
    assert ob.commit_offsets() == {P0: 7, P1: 42}


def test_take_some_partitions_of_a_batch():
    ob = OpenBatches()
    read(ob, P0, 0, 1000, "a")
    read(ob, P1, 0, 1000, "b")
    assert ob.take(1000, (P1,)) == {P1: ["b"]}
    assert ob.times() == [1000]
    assert ob.commit_offsets() == {P0: 0, P1: 1}
    assert ob.take(1000, (P0, P1)) == {P0: ["a"]}
    assert ob.times() == []
    assert ob.commit_offsets() == {P0: 1, P1: 1}


def test_take_of_an_unknown_batch_is_empty():
    ob = OpenBatches()
    read(ob, P0, 0, 1000, "a")
    assert ob.take(5000) == {}
    assert ob.take(5000, (P0,)) == {}
    assert ob.commit_offsets() == {P0: 0}


def test_drop_on_revoke_forgets_the_partition():
    ob = OpenBatches()
    read(ob, P0, 3, 1000, "a")
    read(ob, P1, 8, 1000, "b")
    read(ob, P1, 9, 2000, "c")
    ob.drop([P1])
    assert ob.commit_offsets() == {P0: 3}  # nothing committed for a partition we lost
    assert ob.times_of(P1) == []
    assert ob.take(1000) == {P0: ["a"]}
    assert ob.take(2000) == {}
    assert ob.commit_offsets() == {P0: 4}


def test_a_reassigned_partition_starts_afresh():
    ob = OpenBatches()
    read(ob, P0, 3, 1000, "old")
    ob.drop([P0])
    read(ob, P0, 3, 1000, "again")
    assert ob.commit_offsets() == {P0: 3}
    assert ob.take(1000) == {P0: ["again"]}
    assert ob.commit_offsets() == {P0: 4}


def test_a_record_for_a_taken_batch_opens_it_again():
    ob = OpenBatches()
    read(ob, P0, 0, 1000, "a")
    ob.take(1000)
    read(ob, P0, 1, 1000, "b")
    assert ob.commit_offsets() == {P0: 1}
    assert ob.take(1000) == {P0: ["b"]}
    assert ob.commit_offsets() == {P0: 2}
