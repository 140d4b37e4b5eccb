"""Exactly-once on the real broker: the transactional happy path, and fencing.

The broker shows records of aborted transactions to read_committed readers (docs/test-broker.md),
so "no duplicates after a crash" is the chaos test's business against real Kafka; here:
while a step's transaction is open its outputs and its input offsets are invisible
together, and once it commits they are visible together.
"""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

import kstream
from kstream.delivery import ExactlyOnce, FencedError, open_delivery
from kstream.testing import FAST_CLIENT, produce
from kstream.worker import Worker


def read_all(bootstrap: str, topic: str, isolation: str) -> list[bytes]:
    """Every value of a 1-partition topic up to its end, as a reader with `isolation` sees it."""
    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "eos-reader",
            "enable.partition.eof": True,
            "isolation.level": isolation,
            **FAST_CLIENT,
        }
    )
    c.assign([TopicPartition(topic, 0, 0)])
    out = []
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            for m in c.consume(1000, 0.2):
                if m.error() is None:
                    out.append(m.value())
                elif m.error().code() == KafkaError._PARTITION_EOF:
                    return out
    finally:
        c.close()
    raise AssertionError(f"no end of {topic} within 20s")


def committed(bootstrap: str, group: str, topic: str) -> int:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, **FAST_CLIENT})
    try:
        return c.committed([TopicPartition(topic, 0)], timeout=10)[0].offset
    finally:
        c.close()


def upper_app(app_id: str, bootstrap: str, source: str, out: str, tmp_path, **settings):
    app = kstream.App(
        app_id,
        batch_interval=1.0,
        brokers=bootstrap,
        kafka=FAST_CLIENT,
        guarantee="exactly-once",
        state_dir=str(tmp_path / "state"),
        **settings,
    )
    app.stream(source).map(str.upper).to(out)
    return app


def test_outputs_and_offsets_of_a_step_appear_together(bootstrap, topics, app_id, tmp_path):
    source, out = topics("eos-in"), topics("eos-out")
    start = int(time.time() * 1000) - 60_000
    produce(bootstrap, source, [(None, f"r{i}".encode(), start + i * 10) for i in range(300)])
    seen_in_transaction: list[tuple[int, int, int]] = []
    seen_after: list[tuple[int, int]] = []

    class Watched:
        """The worker's producer, looking at the topics around each commit of a step."""

        def __init__(self, config):
            self._producer = Producer(config)

        def commit_transaction(self, *args):
            # the step's records are written, not committed
            seen_in_transaction.append(
                (
                    len(read_all(bootstrap, out, "read_uncommitted")),
                    len(read_all(bootstrap, out, "read_committed")),
                    committed(bootstrap, app_id, source),
                )
            )
            self._producer.commit_transaction(*args)
            seen_after.append(
                (
                    len(read_all(bootstrap, out, "read_committed")),
                    committed(bootstrap, app_id, source),
                )
            )

        def __getattr__(self, name):
            return getattr(self._producer, name)

    def watched(*args, **kwargs):
        return open_delivery(*args, **kwargs, producer_factory=Watched)

    worker = Worker(upper_app(app_id, bootstrap, source, out, tmp_path), delivery_factory=watched)
    worker.prepare()
    worker.start()
    try:
        deadline = time.monotonic() + 60
        while not seen_after or seen_after[-1][0] < 300:
            assert time.monotonic() < deadline, f"not all outputs committed: {seen_after}"
            worker.step()
    finally:
        worker.close()
    assert seen_in_transaction, "no step ran a transaction"
    previous = (0, -1001)  # outputs and offset committed before the step (none: -1001)
    for (written, visible, offset), after in zip(seen_in_transaction, seen_after, strict=True):
        assert written > previous[0], "the step's outputs were not written before the commit"
        # while the transaction is open: neither its outputs nor its offsets are visible
        assert (visible, offset) == previous
        # once committed: both, and the offset covers exactly the records output
        assert after[0] == written and after[1] == after[0]
        previous = after
    assert read_all(bootstrap, out, "read_committed") == [f"R{i}".encode() for i in range(300)]
    assert committed(bootstrap, app_id, source) == 300


def test_a_zombie_is_fenced_and_stops(bootstrap, topics, app_id, tmp_path):
    """A replacement with the same static member id takes over the transactional id: the
    old worker's next commit fails and it stops, instead of fencing the new one back."""
    source, out = topics("eos-in"), topics("eos-out")
    start = int(time.time() * 1000) - 60_000
    produce(bootstrap, source, [(None, b"a", start)])
    worker = Worker(upper_app(app_id, bootstrap, source, out, tmp_path, group_instance_id="pod-0"))
    worker.prepare()
    worker.start()
    try:
        deadline = time.monotonic() + 30
        while worker.batches_done == 0:
            assert time.monotonic() < deadline, "the first batch never ran"
            worker.step()
        replacement = ExactlyOnce(bootstrap, FAST_CLIENT, lambda what: None, f"{app_id}-pod-0")
        produce(bootstrap, source, [(None, b"b", start + 5000)])
        with pytest.raises(FencedError, match="took over"):
            stop_at = time.monotonic() + 30
            while time.monotonic() < stop_at:
                worker.loop(duration=1.0)
        replacement.close()
    finally:
        worker.close()


def test_exactly_once_worker_finishes_a_keyed_pipeline(bootstrap, topics, app_id, tmp_path):
    """Word count with a repartition stage and state: every step is one transaction
    across both stages, and the totals are exact."""
    source, out = topics("eos-in", 4), topics("eos-out")
    start = int(time.time() * 1000) - 60_000
    lines = [(None, f"x y w{i % 5}".encode(), start + i * 5) for i in range(4000)]
    produce(bootstrap, source, lines)
    app = kstream.App(
        app_id,
        batch_interval=1.0,
        brokers=bootstrap,
        kafka=FAST_CLIENT,
        guarantee="exactly-once",
        state_dir=str(tmp_path / "state"),
    )
    (
        app.stream(source)
        .flat_map(str.split)
        .map(lambda w: (w, 1))
        .update_state_by_key(lambda new, old: sum(new) + (old or 0))
        .to(out)
    )
    worker = Worker(app)
    worker.prepare()
    worker.start()
    latest: dict[bytes, int] = {}

    def totals_reached() -> bool:
        c = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": "eos-totals",
                "enable.partition.eof": True,
                "isolation.level": "read_committed",
                **FAST_CLIENT,
            }
        )
        c.assign([TopicPartition(out, 0, 0)])
        try:
            while True:
                ms = c.consume(1000, 1.0)
                if not ms:
                    return False
                for m in ms:
                    if m.error() is None:
                        latest[m.key()] = int(m.value())
                    elif m.error().code() == KafkaError._PARTITION_EOF:
                        return latest.get(b"x") == 4000
        finally:
            c.close()

    try:
        deadline = time.monotonic() + 90
        while True:
            assert time.monotonic() < deadline, f"totals not reached: {latest}"
            worker.loop(duration=2.0)
            if totals_reached():
                break
    finally:
        worker.close()
    assert latest == {b"x": 4000, b"y": 4000, **{f"w{i}".encode(): 800 for i in range(5)}}
