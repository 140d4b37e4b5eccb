"""Kafka's key hash: Java's `Utils.murmur2`, as its producers (and Kafka Streams) place a
keyed record on `toPositive(murmur2(key bytes)) % partitions`. librdkafka's
`murmur2_random` partitioner is the same function; kstream's repartition topics use it
too, so they are co-partitioned with topics that Java producers keyed.
"""

from __future__ import annotations

import struct

SEED = 0x9747B28C
_M = 0x5BD1E995
_MASK = 0xFFFFFFFF
_words = struct.Struct("<I").iter_unpack


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
