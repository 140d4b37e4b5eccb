"""The record format of repartition topics: data records and batch markers.

Every value is a pickled (batch_time, side, payload, writer); side -1 marks a batch marker
whose payload is (upstream task ids, sides that produced a result). The writer is the run
of a batch that wrote the record (new_writer()): records of a run whose marker never came
are dropped downstream, since that run's batch was run again (stages.ExchangeStage).
Pickle is fine here: these topics are internal to one app, written and read by the same
code.
"""

from __future__ import annotations

import itertools
import pickle
import random
import zlib
from collections.abc import Callable, Hashable
from typing import Any

from kstream.ops.shuffle import BY_KEY, GLOBAL

MARKER = -1
_dumps = pickle.dumps


def encode(t: int, side: int, record: Any, writer: int) -> bytes:
    return _dumps((t, side, record, writer), 5)


def encode_marker(
    t: int, tasks: tuple[Hashable, ...], sides: tuple[int, ...], writer: int
) -> bytes:
    return _dumps((t, MARKER, (tasks, sides), writer), 5)


_writers = itertools.count(random.SystemRandom().getrandbits(48) << 16)


def new_writer() -> int:
    """An id for one run of a batch, unique across processes (a random start per process)
    and small when pickled."""
    return next(_writers)


decode = pickle.loads


def partitioner(by: str, partitions: int) -> Callable[[Any], int]:
    """Where a record goes: by its key's stable hash, round-robin, or all to one."""
    if by == GLOBAL or partitions == 1:
        return lambda record: 0
    if by == BY_KEY:
        return lambda record: zlib.crc32(_dumps(record[0], 5)) % partitions
    counter = itertools.count()
    return lambda record: next(counter) % partitions
