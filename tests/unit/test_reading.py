"""kstream/kafka/reading.py without a broker: a consumer stand-in plays back a script of
consume() answers (records, partition ends, errors)."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import KafkaError, Message, TopicPartition

from kstream.kafka.reading import ReadError, ToEnd

TOPIC = "t"


def record(p: int, offset: int) -> Message:
    return Message(topic=TOPIC, partition=p, offset=offset, value=b"%d@%d" % (p, offset))


def end(p: int, offset: int) -> Message:
    eof = KafkaError(KafkaError._PARTITION_EOF, "end of partition")
    return Message(topic=TOPIC, partition=p, offset=offset, error=eof)


def failure(code: int, fatal: bool = False) -> Message:
    return Message(topic=TOPIC, error=KafkaError(code, "it broke", fatal=fatal))


class ScriptedConsumer:
    """Answers consume() from `script`, one list per call, then nothing (after a short
    wait, as a consumer with nothing to give would)."""

    def __init__(self, script: list[list[Message]], group_assigns: list[int] | None = None):
        self.script = list(script)
        self.consumed = 0
        self.assigned: list[TopicPartition] | None = None
        self.group_assigns = group_assigns or []

    def assign(self, partitions):
        self.assigned = partitions

    def assignment(self):
        return [TopicPartition(TOPIC, p) for p in self.group_assigns]

    def consume(self, num_messages, timeout):
        self.consumed += 1
        if self.script:
            return self.script.pop(0)
        time.sleep(0.01)
        return []


def values(msgs) -> list[bytes]:
    return [m.value() for m in msgs]


def partitions(*ps: int) -> list[TopicPartition]:
    return [TopicPartition(TOPIC, p) for p in ps]


def test_reads_every_assigned_partition_to_its_end_and_no_further():
    c = ScriptedConsumer(
        [
            [record(0, 0), record(1, 0)],
            [record(0, 1), end(1, 1)],
            [end(0, 2)],
            [record(0, 2)],  # after every end: not read
        ]
    )
    reader = ToEnd(c, timeout=5, partitions=partitions(0, 1))
    assert values(reader) == [b"0@0", b"1@0", b"0@1"]
    assert c.assigned == partitions(0, 1)
    assert c.consumed == 3
    assert reader.complete and reader.missing == []
    assert reader.ends == {0: 2, 1: 1}


def test_a_partition_keeps_the_offset_of_its_first_end():
    c = ScriptedConsumer([[end(0, 1)], [record(0, 1), end(0, 2)], [end(1, 0)]])
    reader = ToEnd(c, timeout=5, partitions=partitions(0, 1))
    assert values(reader) == [b"0@1"]
    assert reader.ends == {0: 1, 1: 0}


def test_no_partitions_is_complete_at_once():
    c = ScriptedConsumer([[record(0, 0)]])
    reader = ToEnd(c, timeout=5, partitions=[])
    assert list(reader) == []
    assert reader.complete and c.consumed == 0


def test_a_partition_without_an_end_stops_the_reading_at_the_timeout():
    c = ScriptedConsumer([[record(0, 0), end(0, 1), record(1, 0)]])
    began = time.monotonic()
    reader = ToEnd(c, timeout=0.2, partitions=partitions(0, 1, 2))
    assert values(reader) == [b"0@0", b"1@0"]
    assert 0.2 <= time.monotonic() - began < 2
    assert not reader.complete
    assert reader.missing == [1, 2]


def test_a_subscribed_reader_waits_for_the_groups_assignment():
    c = ScriptedConsumer([[record(0, 0), end(0, 1)]])  # no partition assigned yet
    reader = ToEnd(c, timeout=0.2)
    assert values(reader) == [b"0@0"]
    assert c.assigned is None  # the group assigns, not the reader
    assert not reader.complete and reader.missing == []

    c = ScriptedConsumer([[end(0, 1)], [record(1, 0)], [end(1, 1)]], group_assigns=[0, 1])
    reader = ToEnd(c, timeout=5)
    assert values(reader) == [b"1@0"]
    assert reader.complete and c.consumed == 3


def test_linger_reads_on_after_every_end():
    c = ScriptedConsumer([[end(0, 0)], [record(0, 0)], [record(0, 1)]])
    reader = ToEnd(c, timeout=5, partitions=partitions(0), linger=0.3)
    began = time.monotonic()
    assert values(reader) == [b"0@0", b"0@1"]
    assert 0.3 <= time.monotonic() - began < 2


def test_errors_stop_the_reading():
    c = ScriptedConsumer([[record(0, 0), failure(KafkaError._TRANSPORT)]])
    with pytest.raises(ReadError, match=r"^reading t: it broke$"):
        list(ToEnd(c, timeout=5, partitions=partitions(0)))


def test_fatal_only_rides_out_other_errors_but_not_a_fatal_one():
    c = ScriptedConsumer([[failure(KafkaError._TRANSPORT), record(0, 0)], [end(0, 1)]])
    assert values(ToEnd(c, timeout=5, partitions=partitions(0), fatal_only=True)) == [b"0@0"]

    c = ScriptedConsumer([[failure(KafkaError._FENCED, fatal=True)]])
    with pytest.raises(ReadError, match="it broke"):
        list(ToEnd(c, timeout=5, partitions=partitions(0), fatal_only=True))
