"""A keyed output lands on the partition a Java producer would put its key on (real broker)."""

from __future__ import annotations

import time

import kstream
from kstream.testing import FAST_CLIENT, produce, read_topic
from kstream.worker import Worker
from tests.unit.test_partitioning import VECTORS, java_partition


def test_a_keyed_output_lands_where_javas_partitioner_puts_its_key(
    bootstrap, topics, app_id, tmp_path
):
    source, out = topics("keys-in", 2), topics("keys-out", 7)
    keys = [k for k in VECTORS if k]  # (an empty key is no key to librdkafka: random)
    start = int(time.time() * 1000) - 30_000
    produce(bootstrap, source, [(None, k.encode(), start + i * 100) for i, k in enumerate(keys)])
    app = kstream.App(
        app_id, batch_interval=1.0, brokers=bootstrap, kafka=FAST_CLIENT, state_dir=str(tmp_path)
    )
    app.stream(source).map(lambda k: (k, 1)).to(out)
    worker = Worker(app)
    worker.prepare()
    worker.start()
    written: list = []
    try:
        deadline = time.monotonic() + 60
        while len(written) < len(keys):
            assert time.monotonic() < deadline, len(written)
            worker.loop(duration=1.0)
            written = read_topic(bootstrap, out, idle=0.2)
    finally:
        worker.close()
    placed = {m.key().decode(): m.partition() for m in written}
    assert placed == {k: java_partition(VECTORS[k], 7) for k in keys}
