"""The message format of repartition topics: frames of records, and batch markers.

Every value is a frame of the topic's codec (kstream/codec.py, named by the message's
`kstream.format` header): (batch_time, side, writer) and a list of intermediate records.
A batch's records for one partition go as few messages as fit (`frames`), since one
message per record made the shuffle cost more than the operators. Side -1 marks a batch
marker, whose one record is (upstream task ids, sides that produced a result). The writer
is the run of a batch that wrote the message (new_writer()): records of a run whose marker
never came are dropped downstream, since that run's batch was run again
(stages.ExchangeStage).
"""

from __future__ import annotations

import itertools
import pickle
import random
from collections.abc import Callable, Hashable, Iterator
from typing import Any

from kstream.codec import Codec
from kstream.kafka import murmur2
from kstream.ops.shuffle import BY_KEY, GLOBAL
from kstream.serde import serializer

MARKER = -1
# A frame's most: records, and bytes (a broker takes messages of 1 MB by default); a
# record larger than that goes alone
FRAME_RECORDS = 10_000
FRAME_BYTES = 512 * 1024
# Keys whose partition a shuffle remembers (then it forgets them all): placing a key costs
# about 1.5 us in Python (its bytes, then murmur2), a remembered one a tenth of that
PLACED_KEYS = 65_536
# Key types equal only to keys of their own type, so a remembered placement never
# answers for a different key that merely compares equal (1 == 1.0 == True)
_REMEMBERED = frozenset((str, bytes, int))
_dumps = pickle.dumps
_auto = serializer("auto", "key_serde")


def encode(t: int, side: int, records: list[Any], writer: int, codec: Codec) -> bytes:
    """One frame: records of batch t for one side of one partition."""
    return codec.dumps_rows((t, side, writer), records)


def frames(
    t: int,
    side: int,
    records: list[Any],
    writer: int,
    place: Callable[[Any], int],
    codec: Codec,
) -> Iterator[tuple[int, bytes]]:
    """(partition, frame) for the records of batch t: each partition's records in order,
    in frames of at most FRAME_RECORDS records and FRAME_BYTES bytes."""
    by_partition: dict[int, list[Any]] = {}
    for r in records:
        p = place(r)
        held = by_partition.get(p)
        if held is None:
            by_partition[p] = [r]
        else:
            held.append(r)
    for p, held in by_partition.items():
        for i in range(0, len(held), FRAME_RECORDS):
            yield from _fitted(p, t, side, held[i : i + FRAME_RECORDS], writer, codec)


def _fitted(p: int, t: int, side: int, records: list[Any], writer: int, codec: Codec):
    frame = encode(t, side, records, writer, codec)
    if len(frame) <= FRAME_BYTES or len(records) == 1:
        yield p, frame
        return
    half = len(records) // 2
    yield from _fitted(p, t, side, records[:half], writer, codec)
    yield from _fitted(p, t, side, records[half:], writer, codec)


def encode_marker(
    t: int, tasks: tuple[Hashable, ...], sides: tuple[int, ...], writer: int, codec: Codec
) -> bytes:
    return encode(t, MARKER, [(tasks, sides)], writer, codec)


_writers = itertools.count(random.SystemRandom().getrandbits(48) << 16)


def new_writer() -> int:
    """An id for one run of a batch, unique across processes (a random start per process)
    and small when encoded (at most 64 bits)."""
    return next(_writers)


def decode(raw: bytes, codec: Codec) -> tuple[int, int, list[Any], int]:
    """(batch_time, side, records, writer) of a frame; a marker's one record is
    (upstream task ids, sides)."""
    (t, side, writer), records = codec.loads_rows(raw)
    return t, side, records, writer


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
            return murmur2.partition(key_bytes(key), partitions)
        p = placed.get(key)
        if p is None:
            if len(placed) >= PLACED_KEYS:
                placed.clear()
            p = placed[key] = murmur2.partition(key_bytes(key), partitions)
        return p

    return place
