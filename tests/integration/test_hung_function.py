"""A user function that hangs is reported (where it hangs), and SIGTERM still ends the
worker within its stop timeout, committing nothing of the batch in hand."""

from __future__ import annotations

import signal
import time

from confluent_kafka import Consumer, TopicPartition

from kstream.testing import FAST_CLIENT, produce, read_topic
from tests.integration.workers import spawn_worker, wait_for


def test_a_hung_function_is_reported_and_a_stop_is_bounded(bootstrap, topics, app_id, tmp_path):
    source, out = topics("hang-in"), topics("hang-out")
    start = int(time.time() * 1000) - 60_000
    produce(bootstrap, source, [(None, b"fine", start)])
    log = tmp_path / "worker.log"
    env = {
        "KS_TEST_INPUT": source,
        "KS_TEST_OUTPUT": out,
        "KSTREAM_HUNG_WARN_SECONDS": "2",
        "KSTREAM_STOP_TIMEOUT": "3",
    }
    worker = spawn_worker("hangs.py", app_id, bootstrap, log, env)
    try:
        wait_for(lambda: len(read_topic(bootstrap, out, idle=0.5)) == 1, 60, "the first output")
        produce(bootstrap, source, [(None, b"hang", start + 5000)])
        wait_for(lambda: "busy for" in log.read_text(), 60, "the watchdog's warning")
        warning = log.read_text().split("busy for", 1)[1]
        # it names the user's function first, with its file and line
        assert "hangs.py:" in warning.splitlines()[0] and "in shout" in warning.splitlines()[0]
        assert worker.poll() is None, "the worker died instead of reporting"

        worker.send_signal(signal.SIGTERM)
        began = time.monotonic()
        code = worker.wait(30)
        assert code == 1
        assert time.monotonic() - began < 10  # 3 s of stop timeout, plus leaving
        assert "did not stop within 3s" in log.read_text()
    finally:
        if worker.poll() is None:
            worker.kill()
    # the batch in hand was not committed: "hang" (offset 1) is read again after a restart
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": app_id, **FAST_CLIENT})
    try:
        assert c.committed([TopicPartition(source, 0)], timeout=10)[0].offset == 1
    finally:
        c.close()
    assert [m.value() for m in read_topic(bootstrap, out, idle=0.5)] == [b"FINE"]
