import json
import math
import threading

import pytest

from kstream.observe import Timeline


def test_ring_keeps_the_last_capacity_batches_in_order():
    tl = Timeline(capacity=3)
    for i in range(5):
        tl.add(
            100.0 + i,
            records=i,
            processing_seconds=0.1,
            scheduling_delay_seconds=0.0,
            input_rate=float(i),
        )
    snap = tl.snapshot()
    assert snap["capacity"] == 3
    assert [b["batch_time"] for b in snap["batches"]] == [102.0, 103.0, 104.0]
    assert [b["seq"] for b in snap["batches"]] == [3, 4, 5]
    assert snap["last_batch_time"] == 104.0
    # totals count every batch, including evicted ones
    assert snap["totals"] == {"batches": 5, "records": 10, "processing_seconds": pytest.approx(0.5)}
    assert [b.seq for b in tl.batches_since(3)] == [4, 5]
    assert [b.seq for b in tl.batches_since(0)] == [3, 4, 5]


def test_empty_snapshot():
    snap = Timeline().snapshot()
    assert snap["batches"] == [] and snap["lag"] == [] and snap["state"] == []
    assert snap["last_batch_time"] is None
    assert snap["total_lag"] == 0
    json.dumps(snap, allow_nan=False)


def test_lag_and_state_sizes():
    tl = Timeline()
    tl.set_lag("b", 1, 5)
    tl.set_lag("a", 2, 7)
    tl.set_lag("a", 0, 1)
    tl.set_lag("a", 2, 3)  # overwrite
    tl.set_state_size("counts", 10)
    tl.set_state_size("sessions", 2)
    snap = tl.snapshot()
    assert snap["lag"] == [
        {"topic": "a", "partition": 0, "lag": 1},
        {"topic": "a", "partition": 2, "lag": 3},
        {"topic": "b", "partition": 1, "lag": 5},
    ]
    assert snap["total_lag"] == 9 == tl.total_lag()
    assert snap["state"] == [{"store": "counts", "keys": 10}, {"store": "sessions", "keys": 2}]
    tl.forget_partition("a", 2)
    assert tl.total_lag() == 6


def test_non_finite_values_become_null():
    tl = Timeline()
    tl.add(1.0, 0, math.nan, math.inf, math.nan)
    batch = tl.snapshot()["batches"][0]
    assert batch["processing_seconds"] is None
    assert batch["scheduling_delay_seconds"] is None
    assert batch["input_rate"] is None
    json.dumps(tl.snapshot(), allow_nan=False)


def test_concurrent_writers_and_readers():
    tl = Timeline(capacity=50)
    stop = threading.Event()
    errors = []

    def read():
        while not stop.is_set():
            try:
                snap = tl.snapshot()
                json.dumps(snap, allow_nan=False)
                seqs = [b["seq"] for b in snap["batches"]]
                assert seqs == sorted(seqs) and len(seqs) <= 50
            except Exception as exc:  # pragma: no cover - reported below
                errors.append(exc)

    readers = [threading.Thread(target=read) for _ in range(2)]
    for r in readers:
        r.start()

    def write(offset):
        for i in range(2000):
            tl.add(float(i), 1, 0.01, 0.0, 1.0)
            tl.set_lag("t", offset, i)

    writers = [threading.Thread(target=write, args=(k,)) for k in range(2)]
    for w in writers:
        w.start()
    for w in writers:
        w.join()
    stop.set()
    for r in readers:
        r.join()
    assert not errors
    assert tl.totals().batches == 4000 and tl.totals().records == 4000


def test_capacity_must_be_positive():
    with pytest.raises(ValueError):
        Timeline(capacity=0)
