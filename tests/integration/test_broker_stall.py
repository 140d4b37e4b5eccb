"""A broker that stops answering for a while: the worker waits, then finishes, losing nothing."""

from __future__ import annotations

import os
import signal
import time

import pytest

from tests.integration.test_worker_processes import PARTITIONS, produce_lines
from tests.integration.workers import (
    make_lines,
    output_batches,
    spawn_worker,
    stop,
    total,
    wait_for,
)


def test_sigstop_of_the_broker_for_10s_loses_nothing(
    embedded_broker, bootstrap, topics, app_id, tmp_path
):
    if embedded_broker is None:
        pytest.skip("needs the embedded broker's process (KSTREAM_BOOTSTRAP_SERVERS is set)")
    source, output = topics("lines", PARTITIONS), topics("counts", 4)
    records, expected = make_lines(PARTITIONS, per_partition=300, seconds=30)
    produce_lines(bootstrap, source, records)
    log = tmp_path / "w.log"
    env = {"KS_TEST_INPUT": source, "KS_TEST_OUTPUT": output, "KS_TEST_PAUSE": "0.3"}
    worker = spawn_worker("wordcount.py", app_id, bootstrap, log, env)
    wait_for(lambda: total(output_batches(bootstrap, output, idle=0.3)[0]) > 0, 60, "output")

    pid = embedded_broker.proc.pid
    os.kill(pid, signal.SIGSTOP)
    try:
        time.sleep(10)
        assert worker.poll() is None, "the worker must wait for the broker, not exit"
    finally:
        os.kill(pid, signal.SIGCONT)

    def done() -> bool:
        got = output_batches(bootstrap, output)[0]
        return all(got.get(t, {}).get(w, 0) >= n for t, c in expected.items() for w, n in c.items())

    try:
        wait_for(done, 120, "every word of every batch after the stall")
    finally:
        assert stop(worker) == 0, log.read_text()[-3000:]
