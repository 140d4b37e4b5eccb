"""The record format of repartition topics: data records and batch markers.

Every value is a pickled (batch_time, side, payload); side -1 marks a batch marker whose
payload is (upstream task ids, sides that produced a result). Pickle is fine here: these
topics are internal to one app, written and read by the same code.
"""

from __future__ import annotations

import itertools
import pickle
import zlib
from collections.abc import Callable, Hashable
from typing import Any

from kstream.ops.shuffle import BY_KEY, GLOBAL

MARKER = -1
_dumps = pickle.dumps


def encode(t: int, side: int, record: Any) -> bytes:
    return _dumps((t, side, record), 5)


def encode_marker(t: int, tasks: tuple[Hashable, ...], sides: tuple[int, ...]) -> bytes:
    return _dumps((t, MARKER, (tasks, sides)), 5)


decode = pickle.loads


def partitioner(by: str, partitions: int) -> Callable[[Any], int]:
    """Where a record goes: by its key's stable hash, round-robin, or all to one."""
    if by == GLOBAL or partitions == 1:
        return lambda record: 0
    if by == BY_KEY:
        return lambda record: zlib.crc32(_dumps(record[0], 5)) % partitions
    counter = itertools.count()
    return lambda record: next(counter) % partitions
