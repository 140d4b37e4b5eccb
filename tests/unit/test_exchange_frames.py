"""Repartition records go as frames: a batch's records for one partition in as few
messages as fit (kstream/kafka/exchange.py)."""

from __future__ import annotations

from kstream.codec import Msgpack
from kstream.kafka import exchange
from kstream.partitioning import BY_KEY, partitioner

CODEC = Msgpack()


def unframe(frames):
    """partition -> its records in order, and the number of frames."""
    out: dict[int, list] = {}
    n = 0
    for p, frame in frames:
        t, side, records, writer = exchange.decode(frame, CODEC)
        assert (t, side, writer) == (5000, 1, 7)
        out.setdefault(p, []).extend(records)
        n += 1
    return out, n


def test_a_partitions_records_go_in_one_frame_in_their_order():
    place = partitioner(BY_KEY, 4)
    records = [(f"k{i % 50}", i) for i in range(1000)]
    by_partition, n = unframe(exchange.frames(5000, 1, records, 7, place, CODEC))
    assert n == len(by_partition) == 4
    for p, held in by_partition.items():
        assert held == [r for r in records if place(r) == p]


def test_frames_are_cut_at_the_record_and_byte_limits(monkeypatch):
    monkeypatch.setattr(exchange, "FRAME_RECORDS", 100)
    records = [("k", i) for i in range(250)]
    by_partition, n = unframe(exchange.frames(5000, 1, records, 7, lambda r: 0, CODEC))
    assert (by_partition, n) == ({0: records}, 3)

    monkeypatch.setattr(exchange, "FRAME_BYTES", 10_000)
    big = [("k", "x" * 3000) for _ in range(10)] + [("huge", "y" * 50_000)]
    frames = list(exchange.frames(5000, 1, big, 7, lambda r: 0, CODEC))
    assert all(len(f) <= 10_000 for _, f in frames[:-1])
    assert exchange.decode(frames[-1][1], CODEC)[2] == [big[-1]]  # larger than a frame: alone
    assert unframe(frames)[0] == {0: big}
