"""Run `kstream worker` as real subprocesses and read what they wrote."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from kstream.kafka.reading import ToEnd
from kstream.testing import FAST_CLIENT, read_topic

APPS = Path(__file__).parent / "apps"
FAST = ["-X", "session.timeout.ms=2000", "-X", "heartbeat.interval.ms=500"]
WORDS = [f"w{i:02d}" for i in range(40)]


def spawn_worker(
    app: str, app_id: str, bootstrap: str, log: Path, env: dict[str, str] | None = None
) -> subprocess.Popen:
    cmd = [
        sys.executable,
        "-m",
        "kstream",
        "worker",
        str(APPS / app),
        "--app-id",
        app_id,
        "--brokers",
        bootstrap,
        "--metrics-port",
        "0",
        *FAST,
    ]
    with open(log, "ab") as out:
        return subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
        )


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
    if proc.poll() is None:
        proc.send_signal(sig)
    return proc.wait(timeout)


class WaitTimeout(AssertionError):
    """What was waited for did not happen in time."""


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise WaitTimeout(f"timed out after {timeout}s waiting for {what}")


def make_lines(partitions: int, per_partition: int, seconds: int, seed: int = 1):
    """Lines with timestamps over `seconds` of event time ending a minute ago.

    Returns (records as (partition, line, ts_ms), expected word counts per batch time).
    """
    rng = random.Random(seed)
    end = (int(time.time()) - 60) * 1000
    start = end - seconds * 1000
    records = []
    expected: dict[int, Counter] = defaultdict(Counter)
    for p in range(partitions):
        for i in range(per_partition):
            ts = start + (i * seconds * 1000) // per_partition + rng.randrange(0, 50)
            line = " ".join(rng.choices(WORDS, k=rng.randint(1, 9)))
            records.append((p, line, ts))
            expected[ts - ts % 1000 + 1000].update(line.split())
    return records, dict(expected)


def output_batches(bootstrap: str, topic: str, idle: float = 1.5) -> tuple[dict[int, Counter], int]:
    """Word counts per batch time as written by the workers, and the number of records."""
    got: dict[int, Counter] = defaultdict(Counter)
    msgs = read_topic(bootstrap, topic, idle=idle)
    for m in msgs:
        got[m.timestamp()[1]][m.key().decode()] += int(m.value())
    return dict(got), len(msgs)


def read_to_end(bootstrap: str, topic: str, timeout: float = 30, committed: bool = True) -> list:
    """Every committed record of a topic (or every record, committed=False), read to the
    end of each partition (assigned, no group to join): exact where read_topic's idle
    wait may miss a slow partition."""
    return _read_to_end(bootstrap, topic, timeout, committed)[0]


def partition_ends(bootstrap: str, topic: str, committed: bool) -> dict[int, int]:
    """Where each partition ends for a reader: its last stable offset for read_committed,
    its high watermark otherwise (from end-of-partition events: Tansu's ListOffsets is
    wrong, docs/test-broker.md)."""
    return _read_to_end(bootstrap, topic, 30, committed)[1]


def _read_to_end(bootstrap: str, topic: str, timeout: float, committed: bool):
    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "unused",  # assign() only: nothing is joined or committed
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "isolation.level": "read_committed" if committed else "read_uncommitted",
            **FAST_CLIENT,
        }
    )
    try:
        partitions = c.list_topics(topic, timeout=10).topics[topic].partitions
        reader = ToEnd(c, timeout, [TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        out = list(reader)
    finally:
        c.close()
    if not reader.complete:
        raise AssertionError(f"{topic}: no end of partitions {reader.missing} in {timeout}s")
    return out, reader.ends


def total(batches: dict[int, Counter]) -> int:
    return sum(sum(c.values()) for c in batches.values())
