"""What the worker tells the observer in a rebalance (no broker needed)."""

import logging

from confluent_kafka import TopicPartition

import kstream
from kstream.membership import Membership
from kstream.worker import Worker


class Stub:
    def __init__(self):
        self.revoked = []

    def revoke(self, tps):
        self.revoked.extend(tps)


def value(w: Worker, name: str, **labels: str) -> float | None:
    return w.observer.metrics.registry.get_sample_value(name, {"app_id": "w", **labels})


def test_revoked_and_lost_partitions_are_warned_and_counted_once(caplog):
    app = kstream.App("w", batch_interval=1.0)
    app.stream("lines").pprint()
    w = Worker(app, brokers="127.0.0.1:1")
    stage = Stub()
    m = Membership({"lines": stage}, Stub(), w.observer, w.stopping, cooperative=True)
    with caplog.at_level(logging.WARNING, logger="kstream.membership"):
        m.on_revoke(None, [TopicPartition("lines", 0)])
        m.on_lost(None, [TopicPartition("lines", 1), TopicPartition("lines", 2)])
        w.stopping.set()  # leaving the group on SIGTERM is no news
        m.on_revoke(None, [TopicPartition("lines", 3)])
    assert [r.getMessage() for r in caplog.records] == [
        "revoked lines[0] (their open batches go to the next owner)",
        "lost lines[1], lines[2] (their open batches go to the next owner)",
    ]
    assert value(w, "kstream_rebalances_total", kind="revoke") == 2
    assert value(w, "kstream_rebalances_total", kind="lost") == 1
    assert stage.revoked == [("lines", 0), ("lines", 1), ("lines", 2), ("lines", 3)]
