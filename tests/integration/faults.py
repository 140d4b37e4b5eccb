"""What the fault-tolerance tests share: the guarantees to run under, the input lines of
the tagged word count (apps/tagged_count.py), and the check of its output against them,
telling a lost record from a repeated one.

Each input line is "<id> word word ...". For every batch and word the app writes the ids
of the lines the word came from (an id twice if the line holds the word twice), so the
output shows, per (batch, word): which occurrences are missing (lost), which output
records are whole repeats (at-least-once replays of a batch), which occurrences were
counted more than once in their own batch, and which in a batch not theirs (an input
record processed twice, the second time as a late record).
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from kstream.settings import CHOICES
from kstream.testing import FAST_CLIENT
from tests.integration.workers import WORDS, partition_ends, read_to_end

EXACTLY_ONCE_MISSING = "exactly-once" not in CHOICES["guarantee"]
NEEDS_EXACTLY_ONCE = pytest.mark.skipif(
    EXACTLY_ONCE_MISSING, reason="exactly-once not implemented yet"
)

# pytest params: every guarantee the worker offers (exactly-once once it exists)
GUARANTEES = ["at-least-once", pytest.param("exactly-once", marks=NEEDS_EXACTLY_ONCE)]

Key = tuple[int, str]  # (batch time in ms, word)


class StuckInKafkaError(AssertionError):
    """A worker's batch loop is stuck in a Kafka call (not in a user function)."""


def stuck_in_kafka(log: str, seconds: float = 20) -> str | None:
    """The watchdog's report of a batch loop busy for `seconds` or more in a Kafka call
    (kstream/delivery.py), not in a user function, if the worker log has one."""
    for m in re.finditer(r"the batch loop has been busy for (\d+)s", log):
        report = log[m.start() : m.start() + 1500]
        if int(m.group(1)) >= seconds and "kstream/delivery.py" in report:
            return report
    return None


def stop_all(procs: list[subprocess.Popen], timeout: float = 40) -> list[int | None]:
    """SIGTERM every worker at once; their exit codes (None: killed after `timeout`)."""
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    codes: list[int | None] = []
    deadline = time.monotonic() + timeout
    for p in procs:
        try:
            codes.append(p.wait(max(0.1, deadline - time.monotonic())))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(10)
            codes.append(None)
    return codes


def committed(bootstrap: str, group: str, topic: str, partitions: int) -> list[int]:
    """The group's committed offset of each partition of the topic (negative: none)."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, **FAST_CLIENT})
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        return [tp.offset for tp in c.committed(tps, timeout=10)]
    finally:
        c.close()


def real_kafka() -> bool:
    """Whether the tests run against KSTREAM_BOOTSTRAP_SERVERS (the conftest's external
    broker, e.g. docker-compose's Kafka) rather than the embedded Tansu."""
    return bool(os.environ.get("KSTREAM_BOOTSTRAP_SERVERS"))


def tagged_lines(
    partitions: int,
    per_partition: int,
    seconds: int,
    seed: int = 1,
    first_id: int = 0,
    start_ms: int | None = None,
    jitter_ms: int = 50,
) -> tuple[list[tuple[int, str, int]], dict[Key, Counter]]:
    """Lines "<id> words" spread over `seconds` of event time from `start_ms` (default:
    ending a minute ago), in time order per partition up to a random jitter of
    `jitter_ms` (as make_lines: near a batch boundary a line may come after one of the
    next batch). Returns the records as (partition, line, timestamp ms) and, per
    (batch, word), the ids it should count."""
    rng = random.Random(seed)
    if start_ms is None:
        start_ms = (int(time.time()) - 60 - seconds) * 1000
    records = []
    expected: dict[Key, Counter] = defaultdict(Counter)
    rid = first_id
    for p in range(partitions):
        for i in range(per_partition):
            ts = start_ms + (i * seconds * 1000) // per_partition + rng.randrange(0, jitter_ms or 1)
            words = rng.choices(WORDS, k=rng.randint(1, 9))
            records.append((p, f"{rid} {' '.join(words)}", ts))
            t = ts - ts % 1000 + 1000
            for w in words:
                expected[(t, w)][rid] += 1
            rid += 1
    return records, dict(expected)


def merge(expected: dict[Key, Counter], more: dict[Key, Counter]) -> None:
    """Add the expectation of more lines (two parts may share a batch)."""
    for key, ids in more.items():
        expected.setdefault(key, Counter()).update(ids)


def produce_lines(bootstrap: str, topic: str, records: list[tuple[int, str, int]]) -> None:
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 10})
    for partition, line, ts in records:
        while True:
            try:
                p.produce(topic, line.encode(), partition=partition, timestamp=ts)
                break
            except BufferError:
                p.poll(0.1)
        p.poll(0)
    assert p.flush(60) == 0, "lines not acknowledged"


def read_output(
    bootstrap: str, topic: str, timeout: float = 60, committed: bool = True
) -> dict[Key, list[list[int]]]:
    """Every record the app wrote (committed, unless committed=False), per (batch, word):
    each its list of line ids. Read up to the end of every partition, without a consumer
    group (no join to wait for, so it can be called often)."""
    got: dict[Key, list[list[int]]] = defaultdict(list)
    for m in read_to_end(bootstrap, topic, timeout, committed):
        got[(m.timestamp()[1], m.key().decode())].append(json.loads(m.value()))
    return dict(got)


def read_values(bootstrap: str, topic: str, timeout: float = 30) -> list[bytes]:
    """The committed values of a 1-partition topic, in order."""
    return [m.value() for m in read_to_end(bootstrap, topic, timeout)]


def read_stable_output(bootstrap: str, topic: str, quiet: float = 3.0) -> dict:
    """The output once it has stopped growing for `quiet` seconds (a repeat of the last
    batches could still be on its way when every expected count is in)."""
    got = read_output(bootstrap, topic)
    while True:
        time.sleep(quiet)
        again = read_output(bootstrap, topic)
        if sum(map(len, again.values())) == sum(map(len, got.values())):
            return again
        got = again


@dataclass
class Outcome:
    """The app's output compared with what it should count."""

    records: int = 0  # output records
    expected_records: int = 0  # (batch, word) pairs with something to count
    lost: dict[Key, Counter] = field(default_factory=dict)  # occurrences missing
    duplicate_records: int = 0  # output records that repeat an earlier one whole
    recounted: int = 0  # occurrences counted again in their batch (beyond whole repeats)
    foreign: int = 0  # occurrences counted in a (batch, word) they do not belong to
    # those by (the batch they belong to, the batch they were counted in)
    misplaced: Counter = field(default_factory=Counter)

    @property
    def lost_occurrences(self) -> int:
        return sum(sum(c.values()) for c in self.lost.values())

    @property
    def clean(self) -> bool:
        """Exactly once: every record written once, nothing missing or counted twice."""
        return (
            not self.lost
            and self.duplicate_records == 0
            and self.recounted == 0
            and self.foreign == 0
            and self.records == self.expected_records
        )

    def summary(self) -> str:
        lost = "; ".join(
            f"{t}/{w}: ids {sorted(c.elements())[:8]}" for (t, w), c in list(self.lost.items())[:8]
        )
        return (
            f"{self.records} output records for {self.expected_records} (batch, word) pairs: "
            f"{self.lost_occurrences} occurrences lost in {len(self.lost)} pairs, "
            f"{self.duplicate_records} duplicate records, {self.recounted} occurrences "
            f"counted again in their own batch, {self.foreign} counted in a wrong batch"
            + (f"\n  lost: {lost}" if lost else "")
            + (
                "\n  counted in a wrong batch (own batch -> batch counted in: occurrences): "
                + ", ".join(f"{a} -> {b}: {n}" for (a, b), n in self.misplaced.most_common(8))
                if self.misplaced
                else ""
            )
        )


def compare(expected: dict[Key, Counter], got: dict[Key, list[list[int]]]) -> Outcome:
    out = Outcome(records=sum(map(len, got.values())), expected_records=len(expected))
    batch_of = {rid: t for (t, _), ids in expected.items() for rid in ids}
    for key in expected.keys() | got.keys():
        want = expected.get(key, Counter())
        seen: set[tuple[int, ...]] = set()
        have: Counter = Counter()
        for ids in got.get(key, ()):
            whole = tuple(sorted(ids))
            if whole in seen:
                out.duplicate_records += 1
                continue
            seen.add(whole)
            have.update(ids)
        if missing := want - have:
            out.lost[key] = missing
        for rid, n in (have - want).items():
            if rid in want:
                out.recounted += n
            else:
                out.foreign += n
                out.misplaced[(batch_of.get(rid), key[0])] += n
    return out


def all_counted(expected: dict[Key, Counter], got: dict[Key, list[list[int]]]) -> bool:
    """Every expected occurrence is in the output (the cheap check to wait on)."""
    for key, want in expected.items():
        have: Counter = Counter()
        for ids in got.get(key, ()):
            have.update(ids)
        if want - have:
            return False
    return True


def stalled_transactions(bootstrap: str, topic: str, wait: float = 10.0) -> dict[int, int]:
    """Partitions whose last stable offset stays below their high watermark for `wait`
    seconds: a transaction the broker never resolves (read_committed readers stop there).
    Returns partition -> the stuck offset."""
    stable = partition_ends(bootstrap, topic, committed=True)
    high = partition_ends(bootstrap, topic, committed=False)
    time.sleep(wait)
    again = partition_ends(bootstrap, topic, committed=True)
    return {p: o for p, o in stable.items() if o < high[p] and again[p] == o}
