"""Word count by real `kstream worker` processes on a real broker (docs/design.md §9.1, §9.4)."""

from __future__ import annotations

import signal
import time

import pytest
from confluent_kafka import Producer

from tests.integration.workers import (
    make_lines,
    output_batches,
    spawn_worker,
    stop,
    total,
    wait_for,
)

PARTITIONS = 8


def produce_lines(bootstrap: str, topic: str, records) -> None:
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 10})
    for partition, line, ts in records:
        p.produce(topic, line.encode(), partition=partition, timestamp=ts)
        p.poll(0)
    assert p.flush(60) == 0


@pytest.fixture
def backlog(bootstrap, topics):
    """An 8-partition topic holding 30 s of timestamped lines, and the expected counts."""
    source = topics("lines", PARTITIONS)
    records, expected = make_lines(PARTITIONS, per_partition=500, seconds=30)
    produce_lines(bootstrap, source, records)
    return source, expected


def run_until_done(bootstrap, output, expected, procs, timeout=90):
    def done() -> bool:
        return total(output_batches(bootstrap, output)[0]) >= total(expected)

    try:
        wait_for(done, timeout, "all words counted")
    finally:
        codes = [stop(p) for p in procs]
    assert codes == [0] * len(procs), f"workers exited with {codes}"
    return output_batches(bootstrap, output)


@pytest.mark.parametrize("workers", [1, 2])
def test_per_batch_counts_match_expectation(bootstrap, topics, app_id, backlog, tmp_path, workers):
    source, expected = backlog
    output = topics("counts", 4)
    env = {"KS_TEST_INPUT": source, "KS_TEST_OUTPUT": output}
    procs = [
        spawn_worker("wordcount.py", app_id, bootstrap, tmp_path / f"w{i}.log", env)
        for i in range(workers)
    ]
    got, n_records = run_until_done(bootstrap, output, expected, procs)
    logs = "".join((tmp_path / f"w{i}.log").read_text() for i in range(workers))
    assert got == expected, logs[-3000:]
    # one record per word and batch: nothing counted twice
    assert n_records == sum(len(c) for c in expected.values())


def test_kill_9_mid_run_loses_nothing(bootstrap, topics, app_id, backlog, tmp_path):
    source, expected = backlog
    output = topics("counts", 4)
    env = {"KS_TEST_INPUT": source, "KS_TEST_OUTPUT": output, "KS_TEST_PAUSE": "0.5"}
    log = tmp_path / "worker.log"
    first = spawn_worker("wordcount.py", app_id, bootstrap, log, env)

    def some_output() -> bool:
        return total(output_batches(bootstrap, output, idle=0.3)[0]) > 0

    wait_for(some_output, 60, "the first batches")
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    before = total(output_batches(bootstrap, output)[0])
    assert before < total(expected), "the worker finished before it could be killed"

    time.sleep(0.5)
    second = spawn_worker("wordcount.py", app_id, bootstrap, log, env)
    got, _ = run_until_done(bootstrap, output, expected, [second])
    # at-least-once: every word of every batch is there, in its own batch; repeats allowed
    missing = {
        (t, w): n - got.get(t, {}).get(w, 0)
        for t, counts in expected.items()
        for w, n in counts.items()
        if got.get(t, {}).get(w, 0) < n
    }
    assert not missing, f"lost counts: {list(missing.items())[:10]}\n{log.read_text()[-3000:]}"
