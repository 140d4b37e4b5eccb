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

MARKER = -1
# A frame's most: records, and bytes (a broker takes messages of 1 MB by default); a
# record larger than that goes alone
FRAME_RECORDS = 10_000
FRAME_BYTES = 512 * 1024
_dumps = pickle.dumps


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
