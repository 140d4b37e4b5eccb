"""Keys are placed as Kafka's Java clients place them: murmur2 of the key bytes, both by
kstream's producers (outputs) and by its repartition topics (kstream/partitioning.py)."""

from __future__ import annotations

import pickle

import pytest

from kstream import partitioning
from kstream.kafka.config import producer_config
from kstream.partitioning import BY_KEY, owner, partitioner

# Java's Utils.murmur2 of these UTF-8 bytes (a signed int), from Kafka's UtilsTest
KAFKA_VECTORS = {
    "21": -973932308,
    "foobar": -790332482,
    "a-little-bit-long-string": -985981536,
    "a-little-bit-longer-string": -1486304829,
    "lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    "abc": 479470107,
}
# ... and from librdkafka's murmur2 unit test (as unsigned ints): every tail length,
# and the empty key
LIBRDKAFKA_VECTORS = {
    "kafka": 0xD067CF64,
    "giberish123456789": 0x8F552B0C,
    "1234": 0x9FC97B14,
    "234": 0xE7C009CA,
    "34": 0x873930DA,
    "4": 0x5A4B5CA1,
    "PreAmbleWillBeRemoved,ThePrePartThatIs": 0x78424F1C,
    "reAmbleWillBeRemoved,ThePrePartThatIs": 0x4A62B377,
    "eAmbleWillBeRemoved,ThePrePartThatIs": 0xE0E4E09E,
    "AmbleWillBeRemoved,ThePrePartThatIs": 0x62B8B43F,
    "": 0x106E08D9,
}
VECTORS = {
    **KAFKA_VECTORS,
    **{k: h - (1 << 32) if h >= 1 << 31 else h for k, h in LIBRDKAFKA_VECTORS.items()},
}


def java_partition(signed_hash: int, partitions: int) -> int:
    """Kafka's BuiltInPartitioner.partitionForKey: toPositive(murmur2(key)) % partitions."""
    return (signed_hash & 0x7FFFFFFF) % partitions


@pytest.mark.parametrize("key", VECTORS)
def test_murmur2_is_javas(key):
    assert partitioning.murmur2(key.encode()) == VECTORS[key]


@pytest.mark.parametrize("partitions", [2, 3, 6, 7, 12, 100])
def test_keys_go_where_a_java_producer_puts_them(partitions):
    place = partitioner(BY_KEY, partitions)
    for key, h in VECTORS.items():
        expected = java_partition(h, partitions)
        assert partitioning.partition(key.encode(), partitions) == expected
        assert place((key, "value")) == expected, key
        assert place((key.encode(), "value")) == expected, key
        assert place((key, "again")) == expected  # remembered, the same
        assert owner(expected, partitions)(key)


def test_other_keys_are_placed_by_their_auto_serde_bytes():
    place = partitioner(BY_KEY, 12)
    assert place((21, 1)) == java_partition(KAFKA_VECTORS["21"], 12)  # an int as its digits
    assert place((None, 1)) == java_partition(VECTORS[""], 12)
    assert place((("a", 1), 1)) == partitioning.partition(b'["a",1]', 12)  # JSON
    assert place((frozenset([1]), 1)) == partitioning.partition(pickle.dumps(frozenset([1]), 5), 12)


def test_keys_that_compare_equal_keep_their_own_bytes():
    """1 == 1.0 == True, but "auto" writes them as 1, 1.0 and true: the remembered
    placement of one never answers for another, whichever comes first."""
    for order in ([1, True, 1.0], [True, 1.0, 1], [1.0, 1, True]):
        place = partitioner(BY_KEY, 100)
        got = {repr(k): place((k, None)) for k in order}
        assert got == {
            "1": partitioning.partition(b"1", 100),
            "True": partitioning.partition(b"true", 100),
            "1.0": partitioning.partition(b"1.0", 100),
        }


def test_placements_stay_right_when_the_remembered_ones_are_forgotten(monkeypatch):
    monkeypatch.setattr(partitioning, "PLACED_KEYS", 3)
    place = partitioner(BY_KEY, 7)
    for _ in range(2):
        for i in range(10):
            assert place((f"k{i}", 0)) == partitioning.partition(f"k{i}".encode(), 7)


def test_producers_use_javas_partitioner_unless_told_otherwise():
    def config(overrides):
        return producer_config("b:9092", lambda err, msg: None, overrides)

    assert config({})["partitioner"] == "murmur2_random"
    assert config({"partitioner": "consistent_random"})["partitioner"] == "consistent_random"
