"""State lives on disk: a worker's memory stays flat while its state grows (docs/design.md §4).

A real `kstream worker` counts ever-new keys with map_with_state, phase after phase, until
it holds 6x the keys it held after the first phase. Its RSS then must have grown by much
less than the same keys and values would take in a Python dict, measured in this process
with tracemalloc. And the state must really be there: every key counted once, old keys
sent again are counted twice (their state read back), and the stores hold every key.

(map_with_state touches only the keys of a batch's records. update_state_by_key emits
every key's state every batch, Spark's semantics, so its batches load the whole state
into Python whatever the store; it cannot have a flat footprint.)

RocksDB's own memory counts: its memtables keep the newest writes in memory, and its
block cache what was read. The worker bounds both together (`state_memory_mb`, here 32 MB:
16 MB of memtables, 16 MB of cache, shared by all its stores), well below the dict's
growth here, 66 MB. (With RocksDB's defaults, 64 MB of memtables per store and no bound
across stores, the worker grew by 53-57 MB: everything written was still in memtables.)
"""

from __future__ import annotations

import glob
import os
import time
import tracemalloc
from pathlib import Path

import pytest

from kstream.codec import Msgpack
from kstream.ops.stateful import KEY
from kstream.state.rocks import RocksStore, StoreMemory
from kstream.testing import produce
from tests.integration.workers import spawn_worker, stop, wait_for

PARTITIONS = 4
PHASE = 100_000  # new keys per phase
PHASES = 6  # the state grows 6x from the first phase's end to the last's
PER_LINE = 100  # keys per record
RESENT = 2_000  # old keys sent once more at the end
# The worker's RSS may grow by less than this fraction of what a dict of the keys added
# after the first phase takes (66 MB). Measured: state also kept in a dict, 100 MB (1.5);
# RocksDB's defaults (no budget), 53-57 MB (0.8); state_memory_mb=32, 15-23 MB (0.23-0.35).
MAX_GROWTH = 0.5


class StateInMemoryError(AssertionError):
    """The worker's memory grew with its state."""


def key(i: int) -> str:
    return f"key{i:08d}"


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for pid {pid}")


def settled_rss(pid: int, seconds: float = 2.0) -> int:
    """The worker's resident memory while it idles: the least of samples over a few
    batches (anything transient only adds to it)."""
    samples = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        samples.append(rss_bytes(pid))
        time.sleep(0.1)
    return min(samples)


def dict_growth(first: int, last: int) -> int:
    """Bytes a dict of map_with_state's entries, key -> (count, batch time), takes on
    when it grows from `first` keys to `last` (the least a worker holding this state in
    Python would need)."""
    t = int(time.time() * 1000)
    held: dict[str, tuple[int, int]] = {}
    tracemalloc.start()
    try:
        for i in range(first):
            held[key(i)] = (1, t)
        before = tracemalloc.get_traced_memory()[0]
        for i in range(first, last):
            held[key(i)] = (1, t)
        return tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()


class Report:
    """The worker's per-batch lines: batch, records, sum of their counts."""

    def __init__(self, path: Path):
        self.path = path

    def rows(self) -> list[tuple[int, int, int]]:
        if not self.path.exists():
            return []
        return [tuple(map(int, line.split())) for line in self.path.read_text().splitlines()]

    def totals(self) -> tuple[int, int]:
        rows = self.rows()
        return sum(r[1] for r in rows), sum(r[2] for r in rows)

    def wait(self, records: int, counts: int, what: str, settle: bool = False) -> None:
        """Until the output holds that many records and counts; with `settle`, also until
        the worker has run two more batches (so the memory of those is freed)."""
        wait_for(lambda: self.totals() >= (records, counts), 60, what)
        assert self.totals() == (records, counts), f"{what}: {self.totals()}"
        if settle:
            n = len(self.rows())
            wait_for(lambda: len(self.rows()) >= n + 2, 30, "two more batches")


def send(bootstrap: str, topic: str, keys: list[str]) -> None:
    now = int(time.time() * 1000)
    lines = [" ".join(keys[i : i + PER_LINE]).encode() for i in range(0, len(keys), PER_LINE)]
    produce(bootstrap, topic, [(None, line, now) for line in lines])


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads /proc")
def test_memory_stays_flat_as_state_grows(bootstrap, topics, app_id, tmp_path):
    source = topics("keys", PARTITIONS)
    state_dir = tmp_path / "state"
    report = Report(tmp_path / "report")
    env = {
        "KS_TEST_INPUT": source,
        "KS_TEST_STATE": str(state_dir),
        "KS_TEST_REPORT": str(report.path),
        "KSTREAM_STATE_MEMORY_MB": "32",  # 16 MB of memtables, 16 MB of block cache
    }
    log = tmp_path / "worker.log"
    worker = spawn_worker("many_keys.py", app_id, bootstrap, log, env)
    try:
        wait_for(lambda: len(report.rows()) > 0, 60, "the worker's first batch")
        assert "state stores within 32 MB of RocksDB memory" in log.read_text()
        for phase in range(PHASES):
            send(bootstrap, source, [key(i) for i in range(phase * PHASE, (phase + 1) * PHASE)])
            n = (phase + 1) * PHASE
            measure = phase in (0, PHASES - 1)
            report.wait(n, n, f"phase {phase + 1}: {n:,} keys counted once", settle=measure)
            if phase == 0:
                first = settled_rss(worker.pid)
        last = settled_rss(worker.pid)

        # old keys from every phase, once more: their counts are read back from the stores
        total = PHASES * PHASE
        step = total // RESENT
        send(bootstrap, source, [key(i) for i in range(0, total, step)])
        report.wait(total + RESENT, total + 2 * RESENT, "old keys counted twice")
    finally:
        assert stop(worker) == 0, log.read_text()[-3000:]

    stored = 0
    for path in sorted(glob.glob(str(state_dir / app_id / "*" / "*"))):
        store = RocksStore(path, ("changelog", 0), StoreMemory(16), Msgpack(), "count")
        try:
            stored += sum(1 for k, _ in store.items() if type(k) is tuple and k[0] == KEY)
        finally:
            store.close()
    assert stored == total

    reference = dict_growth(PHASE, total)
    growth = last - first
    mb = 2**20
    if growth >= MAX_GROWTH * reference:
        raise StateInMemoryError(
            f"the worker's RSS grew by {growth / mb:.1f} MB (from {first / mb:.0f} MB) while "
            f"its state grew from {PHASE:,} to {total:,} keys; a dict of those keys grows "
            f"by {reference / mb:.1f} MB: the state is held in memory (in Python, or in "
            "RocksDB's memtables and cache)"
        )
