"""Where a keyed record goes: the ground floor that shuffles, stores and outputs agree on.

Kafka's key hash is Java's `Utils.murmur2`: its producers (and Kafka Streams) place a keyed
record on `toPositive(murmur2(key bytes)) % partitions`, and librdkafka's `murmur2_random`
partitioner (kstream's producers, kstream/kafka/config.py) is the same function. kstream's
repartition topics place keys the same way, so they are co-partitioned with topics that
Java producers keyed, and a task's store holds exactly the keys its partition receives.
"""

from __future__ import annotations

import itertools
import pickle
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kstream.serde import serializer

BY_KEY, BY_RECORD, GLOBAL = "key", "record", "global"  # how a shuffle spreads records
# Keys whose partition a shuffle remembers (then it forgets them all): placing a key costs
# about 1.5 us in Python (its bytes, then murmur2), a remembered one a tenth of that
PLACED_KEYS = 65_536
# Key types equal only to keys of their own type, so a remembered placement never
# answers for a different key that merely compares equal (1 == 1.0 == True)
_REMEMBERED = frozenset((str, bytes, int))
_dumps = pickle.dumps
_auto = serializer("auto", "key_serde")
SEED = 0x9747B28C
_M = 0x5BD1E995
_MASK = 0xFFFFFFFF
_words = struct.Struct("<I").iter_unpack


@dataclass(frozen=True)
class Partitioning:
    """How a stream of pairs is spread over tasks: every record of a key in one task.

    Recorded on each graph node so that an operator needing a key's records together
    reads a stream already spread so without another repartition topic (as Spark skips
    a shuffle where the partitioner matches). `exchange` is the operator whose BY_KEY
    shuffle placed the records (kstream's partitioner, into `partitions`, None: the
    app's default count, known only when a worker starts); None for a keyed source topic,
    placed by its producers' partitioner, whatever it was, into partitions kstream
    did not choose."""

    exchange: str | None
    partitions: int | None

    def serves(self, partitions: int | None, keeps_state: bool) -> bool:
        """Whether an operator asking for `partitions` (None: any) can read the stream as
        it is. One that keeps state needs kstream's own placement: its store and changelog
        partition are the task's, and the keys of its initial state are placed by
        kstream's partitioner (`owner`)."""
        if keeps_state and self.exchange is None:
            return False
        return partitions is None or partitions == self.partitions

    def co_located(self, other: Partitioning) -> bool:
        """Whether two streams hold each key in the same task: both placed by the same
        shuffle (one repartition topic, so one task per partition for both)."""
        return self.exchange is not None and self == other


KEYED_SOURCE = Partitioning(None, None)


def murmur2(data: bytes) -> int:
    """Java's `Utils.murmur2(data)`: a signed 32-bit int."""
    h = _murmur2(data)
    return h - 0x1_0000_0000 if h & 0x8000_0000 else h


def partition(data: bytes, partitions: int) -> int:
    """Where a Java producer puts a record with these key bytes."""
    return (_murmur2(data) & 0x7FFF_FFFF) % partitions


def _murmur2(data: bytes, m: int = _M, mask: int = _MASK) -> int:
    """The hash as an unsigned 32-bit int (Python ints are unbounded: mask each product)."""
    length = len(data)
    h = SEED ^ length
    whole = length & ~3
    for (k,) in _words(data[:whole]):  # little-endian words
        k = (k * m) & mask
        h = ((h * m) ^ ((k ^ (k >> 24)) * m)) & mask
    if length & 3:
        h = ((h ^ int.from_bytes(data[whole:], "little")) * m) & mask
    h = ((h ^ (h >> 13)) * m) & mask
    return h ^ (h >> 15)


def partitioner(by: str, partitions: int) -> Callable[[Any], int]:
    """Where a record goes: by its key as a Java producer places it, round-robin, or all
    to one."""
    if by == GLOBAL or partitions == 1:
        return lambda record: 0
    if by == BY_KEY:
        return _by_key(partitions)
    counter = itertools.count()
    return lambda record: next(counter) % partitions


def key_bytes(key: Any) -> bytes:
    """The bytes a key is placed by: as kstream's "auto" serde writes it (str as UTF-8,
    bytes as they are, an int as its digits, else JSON), so a str key goes where a Java
    StringSerializer producer puts it; None as no bytes; a key JSON cannot write by its
    pickle."""
    try:
        data = _auto(key)
    except (TypeError, ValueError):
        return _dumps(key, 5)
    return b"" if data is None else data


def _by_key(partitions: int) -> Callable[[Any], int]:
    placed: dict[Any, int] = {}

    def place(record: Any) -> int:
        key = record[0]
        if type(key) not in _REMEMBERED:
            return partition(key_bytes(key), partitions)
        p = placed.get(key)
        if p is None:
            if len(placed) >= PLACED_KEYS:
                placed.clear()
            p = placed[key] = partition(key_bytes(key), partitions)
        return p

    return place


def owner(partition: int, partitions: int) -> Callable[[Any], bool]:
    """`owns(key)` for the task of `partition`: True for the keys the shuffle sends there
    (a store's initial state lands in its own partition only)."""
    where = partitioner(BY_KEY, partitions)
    return lambda key: where((key, None)) == partition
