"""The commit protocol of a step (kstream/checkpoint.py, docs/design.md §5) without a
broker: a worker's step over a group member and producers that are stand-ins, every call
in one journal. Its order: the outputs (and dead letters), the changelogs, the flush or
the transaction, the input offsets; only then the local stores."""

from __future__ import annotations

import logging
import time

import pytest
from confluent_kafka import OFFSET_INVALID, KafkaError, Message, TopicPartition

import kstream
from kstream.codec import Msgpack
from kstream.delivery import SendFailedError, StepAbortedError
from kstream.worker import Worker
from tests.unit.offline import FakeAdmin

SOURCE = ("lines", 0)
RECENT = int(time.time() * 1000) - 1500  # the records' time: their batch is due at once
END = KafkaError(KafkaError._PARTITION_EOF, "end of partition")
TOO_LARGE = KafkaError(KafkaError.MSG_SIZE_TOO_LARGE, "Broker: Message size too large")


class GroupMember:
    """A consumer stand-in: at its first consume() the group assigns it lines[0], whose
    records it returns with the partition's end; its commits go to the journal."""

    def __init__(self, config: dict, journal: list, values: list[bytes]):
        self.journal = journal
        self.records = [
            Message(topic="lines", partition=0, offset=i, value=v, timestamp=(1, RECENT + i))
            for i, v in enumerate(values)
        ]
        self.records.append(Message(topic="lines", partition=0, offset=len(values), error=END))
        self.high = len(values)
        self.on_assign = None

    def subscribe(self, topics, on_assign, on_revoke, on_lost):
        self.on_assign = on_assign

    def consume(self, num_messages, timeout):
        if not self.records:
            return []
        self.on_assign(self, [TopicPartition(*SOURCE)])
        records, self.records = self.records, []
        return records

    def incremental_assign(self, partitions):
        pass

    def committed(self, partitions, timeout=None):
        return [TopicPartition(tp.topic, tp.partition, OFFSET_INVALID) for tp in partitions]

    def get_watermark_offsets(self, tp, cached=False):
        return (0, self.high)

    def consumer_group_metadata(self):
        return "group metadata"

    def commit(self, offsets, asynchronous=True):
        self.journal.append(
            ("consumer", "commit", [(o.topic, o.partition, o.offset) for o in offsets])
        )

    def close(self):
        pass


class StoreStandIn:
    """A task's store with changes pending (as a stateful stage's batch leaves it)."""

    codec = Msgpack()

    def __init__(self, journal: list):
        self.journal = journal
        self.changelog_key = ("p-counts-changelog", 0)

    def changes(self):
        return [(b"a", b"1"), (b"b", None)]

    def commit(self, changelog_next):
        self.journal.append(("store", "commit", changelog_next))


class ChangingState:
    """The worker's batch runner, but each batch also leaves changes in `store`."""

    def __init__(self, runner, store: StoreStandIn):
        self.runner = runner
        self.store = store

    def run(self, stage, t, tps):
        result = self.runner.run(stage, t, tps)
        result.stores.append(self.store)
        return result


def upper(line: str) -> str:
    if line == "poison":
        raise ValueError("not this one")
    return line.upper()


def worker(tmp_path, journal, values: list[bytes], **settings) -> Worker:
    """A connected worker whose next step runs one batch of `values` (lines[0]) through
    upper() to `out`, its state changes pending in a store stand-in."""
    app = kstream.App("p", batch_interval=1.0, state_dir=str(tmp_path), **settings)
    app.stream("lines").map(upper).to("out")
    w = Worker(
        app,
        brokers="127.0.0.1:1",
        consumer_factory=lambda config: GroupMember(config, journal, values),
        admin_factory=FakeAdmin({"lines": 1, "out": 1}),
    )
    w.prepare()
    w.runner = ChangingState(w.runner, StoreStandIn(journal))
    w.connect()
    w.delivery.producer.role = "outputs"
    if hasattr(w.delivery, "changelog_producer"):
        w.delivery.changelog_producer.role = "changelogs"
    journal.clear()
    return w


def test_at_least_once_flushes_both_producers_then_commits_then_the_stores_follow(
    tmp_path, journal
):
    w = worker(tmp_path, journal, [b"a", b"b"])
    assert w.step() >= 1
    assert journal == [
        ("outputs", "produce", "out"),
        ("outputs", "produce", "out"),
        ("changelogs", "produce", "p-counts-changelog"),
        ("changelogs", "produce", "p-counts-changelog"),
        ("outputs", "flush", None),
        ("changelogs", "flush", None),
        ("consumer", "commit", [("lines", 0, 2)]),
        ("store", "commit", 2),  # the changelog's next offset: the store is not ahead of it
    ]
    assert w.delivery.producer.pending == []  # all acknowledged before the commit


def test_exactly_once_puts_it_all_in_one_transaction_before_the_stores_follow(tmp_path, journal):
    w = worker(tmp_path, journal, [b"a", b"b"], guarantee="exactly-once")
    assert w.step() >= 1
    assert journal == [
        ("outputs", "begin_transaction", None),
        ("outputs", "produce", "out"),
        ("outputs", "produce", "out"),
        ("outputs", "produce", "p-counts-changelog"),
        ("outputs", "produce", "p-counts-changelog"),
        ("outputs", "flush", None),
        ("outputs", "send_offsets_to_transaction", [("lines", 0, 2)]),
        ("outputs", "commit_transaction", None),
        ("store", "commit", 2),
    ]


def test_dead_letters_go_with_the_outputs_before_the_commit(tmp_path, journal):
    w = worker(tmp_path, journal, [b"a", b"poison", b"b"])
    assert w.step() >= 1
    produced = [(who, topic) for who, call, topic in journal if call == "produce"]
    assert produced[:3] == [("outputs", "p-dlq"), ("outputs", "out"), ("outputs", "out")]
    assert journal[-2:] == [("consumer", "commit", [("lines", 0, 3)]), ("store", "commit", 2)]


def test_outputs_refused_for_good_at_produce_are_dead_letters_of_reason_produce(tmp_path, journal):
    w = worker(tmp_path, journal, [b"a", b"b"])
    w.delivery.producer.refuse_now["out"] = TOO_LARGE
    assert w.step() >= 1
    assert [entry for entry in journal if entry[1] == "produce"][:2] == [
        ("outputs", "produce", "p-dlq"),
        ("outputs", "produce", "p-dlq"),
    ]
    assert journal[-2:] == [("consumer", "commit", [("lines", 0, 2)]), ("store", "commit", 2)]
    letters = [m for m in w.delivery.producer.sent if m.topic() == "p-dlq"]
    assert [(m.value(), reason(m)) for m in letters] == [(b"A", "produce"), (b"B", "produce")]


def test_a_send_that_fails_in_its_report_commits_nothing(tmp_path, journal):
    w = worker(tmp_path, journal, [b"a", b"b"])
    gone = KafkaError(KafkaError._MSG_TIMED_OUT, "Local: Message timed out")
    w.delivery.producer.refuse["out"] = gone
    with pytest.raises(SendFailedError, match="first: out: Local: Message timed out"):
        w.step()
    assert [call for _, call, _ in journal if call in ("commit", "flush")] == ["flush", "flush"]
    assert ("store", "commit", 2) not in journal


def test_a_flush_that_times_out_waits_on_before_the_commit(tmp_path, journal, caplog):
    w = worker(tmp_path, journal, [b"a", b"b"])
    w.delivery.producer.unacknowledged = [2]  # the first flush leaves two in flight
    with caplog.at_level(logging.WARNING, "kstream.delivery"):
        assert w.step() >= 1
    flushes = [entry for entry in journal if entry[1] == "flush"]
    assert flushes == [
        ("outputs", "flush", None),
        ("changelogs", "flush", None),
        ("outputs", "flush", None),
        ("changelogs", "flush", None),
    ]
    assert "waiting for Kafka to acknowledge 2 outputs (5s so far)" in caplog.text
    assert journal[-2:] == [("consumer", "commit", [("lines", 0, 2)]), ("store", "commit", 2)]


def test_an_aborted_transaction_commits_nothing(tmp_path, journal):
    w = worker(tmp_path, journal, [b"a", b"b"], guarantee="exactly-once")
    w.delivery.producer.fail["commit_transaction"] = KafkaError(
        KafkaError._TIMED_OUT, "Local: Timed out"
    )
    with pytest.raises(StepAbortedError, match=r"transaction aborted: .*Timed out"):
        w.step()
    assert journal[-5:] == [
        ("outputs", "send_offsets_to_transaction", [("lines", 0, 2)]),
        ("outputs", "commit_transaction", None),
        ("outputs", "purge", None),  # the abort drops what it holds
        ("outputs", "abort_transaction", None),
        ("outputs", "poll", None),
    ]
    assert not any(who == "store" for who, _, _ in journal)


def reason(m: Message) -> str:
    return dict(m.headers())["kstream.error.reason"].decode()
