"""When Kafka fails a step for good, the worker drops what it had not committed and starts
over from the committed offsets: nothing is lost (real broker, both guarantees)."""

from __future__ import annotations

import time
from collections import Counter

import pytest

import kstream
from kstream.delivery import SendFailedError
from kstream.testing import FAST_CLIENT, produce, read_topic
from kstream.worker import Worker


@pytest.mark.parametrize("guarantee", ["at-least-once", "exactly-once"])
def test_a_failed_step_is_redone_after_a_restart(bootstrap, topics, app_id, tmp_path, guarantee):
    source, out = topics("restart-in", 2), topics("restart-out")
    start = int(time.time() * 1000) - 60_000
    produce(bootstrap, source, [(None, f"r{i}".encode(), start + i * 20) for i in range(500)])
    app = kstream.App(
        app_id,
        batch_interval=1.0,
        brokers=bootstrap,
        kafka=FAST_CLIENT,
        guarantee=guarantee,
        state_dir=str(tmp_path),
    )
    app.stream(source).map(str.upper).to(out)
    worker = Worker(app)
    worker.prepare()
    worker.start()
    failing, member = worker.delivery, worker.consumer

    def fail_once(consumer, offsets):
        failing.abandon()
        raise SendFailedError("1 output(s) could not be written (injected)")

    failing.finish = fail_once
    try:
        deadline = time.monotonic() + 60
        while worker.restarts == 0 or worker.batches_done < 10:
            assert time.monotonic() < deadline, (worker.restarts, worker.batches_done)
            worker.loop(duration=1.0)
        assert worker.delivery is not failing  # a new producer after the restart
        assert worker.consumer is member  # the same group member, rewound
        worker.loop(duration=3.0)
    finally:
        worker.close()
    values = Counter(m.value() for m in read_topic(bootstrap, out, idle=1.0))
    # nothing lost (repeats are allowed: at-least-once, and Tansu shows aborted records)
    assert set(values) == {f"R{i}".encode() for i in range(500)}
