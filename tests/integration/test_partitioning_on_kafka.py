"""Partitioning on a real broker: a keyed output lands on the partition a Java producer
would put its key on; an operator with state after a keyed operator needs no second
repartition topic."""

from __future__ import annotations

import json
import operator
import time

import kstream
from kstream.kafka.admin import Admin
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


def running_total(word, count, state):
    total = (state.get() if state.exists() else 0) + count
    state.update(total)
    return (word, total)


def running_totals(stream):
    """Words counted per batch, then kept as running totals: one shuffle, not two."""
    counts = stream.flat_map(str.split).map(lambda w: (w, 1)).reduce_by_key(operator.add)
    return counts.map_with_state(kstream.StateSpec(running_total))


def test_state_after_a_keyed_operator_reads_its_output_without_a_second_shuffle(
    bootstrap, topics, app_id, tmp_path
):
    source, out = topics("lines", 2), topics("totals", 1)
    lines = [" ".join(["a", "b", "a", "c", "d"][: 1 + i % 5]) for i in range(12)]
    start = int(time.time() * 1000) - 30_000
    start -= start % 1000
    # a line per batch, alternating partitions, so the batches are the same as locally
    for p in (0, 1):
        stamped = [(None, line.encode(), start + i * 1000 + 500) for i, line in enumerate(lines)]
        produce(bootstrap, source, stamped[p::2], partition=p)
    local = kstream.App("local", batch_interval=1.0)
    expected = running_totals(local.queue_stream([[line] for line in lines])).collect()
    local.run_batches(len(lines))

    app = kstream.App(
        app_id, batch_interval=1.0, brokers=bootstrap, kafka=FAST_CLIENT, state_dir=str(tmp_path)
    )
    running_totals(app.stream(source)).to(out, value_serde="json")
    worker = Worker(app)
    worker.prepare()
    worker.start()
    want = sorted({r for _, records in expected.batches for r in records})
    got: list = []
    try:
        deadline = time.monotonic() + 90
        while len(got) < len(want):
            assert time.monotonic() < deadline, (got, want)
            worker.loop(duration=1.0)
            got = sorted(
                {
                    (m.key().decode(), json.loads(m.value()))
                    for m in read_topic(bootstrap, out, idle=0.2)
                }
            )
    finally:
        worker.close()
    assert got == want
    known = Admin(bootstrap, FAST_CLIENT).partitions()
    internal = [t for t in known if t.startswith(f"{app_id}--")]
    assert sorted(internal) == [
        f"{app_id}--map_with_state.running_total--changelog",
        f"{app_id}--reduce_by_key.add--repartition",
    ]
