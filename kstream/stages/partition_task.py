"""One topic-partition of a stage at run time, everything the stage knows of it in one
object: how far it is read, its open batches, which batches it closed (and what its commit
says of them), what its previous owner or its restored state already processed, and its
part of the watermark. Revoking the partition drops the object, and all of that with it."""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from typing import Any, Generic, TypeVar

from kstream.clocks import TP, MarkerPartitionClock, SourcePartitionClock
from kstream.progress import Closings

Clock = TypeVar("Clock", SourcePartitionClock, MarkerPartitionClock)


class Arrival(Enum):
    """What a record read from a partition is to its stage."""

    NEW = "new"  # its batch is open here: it joins it
    LATE = "late"  # its batch closed here already (docs/design.md §2, late records)
    PROCESSED = "processed"  # processed already: by the previous owner, or in restored state


class PartitionTask(Generic[Clock]):
    """A partition's reading, open batches and closings within its stage."""

    def __init__(self, tp: TP, clock: Clock, handed: Closings | None = None):
        """handed: the closings its previous owner committed with its offset
        (kstream/progress.py); the partition starts where they leave it."""
        self.tp = tp
        self.clock = clock  # its part of the stage's watermark (kstream/clocks.py)
        self.position: int | None = None  # the next offset to read, once read or at its end
        self.batches: dict[int, Any] = {}  # open batch -> its records (the stage's container)
        self.first: dict[int, int] = {}  # open batch -> the offset of its first record
        self.closed_through: int | None = None  # the last batch processed here
        self.closings = handed  # what a commit says beyond its offset (kstream/progress.py)
        # which records above the committed offset the previous owner processed
        self.handed: Closings | None = None
        # (batch, input position) through which restored state holds all its input
        self.restored_through: tuple[int, int] | None = None
        if handed is not None:
            self.closed_through = handed.closed_through
            if handed.entries:
                self.handed = Closings(handed.floor, list(handed.entries))

    # -- reading ---------------------------------------------------------------------
    def is_closed(self, t: int) -> bool:
        """Whether batch t is processed here already (or about to be, this step)."""
        done = self.closed_through
        return done is not None and t <= done

    def arrival(self, t: int, offset: int) -> Arrival:
        """Whether a record of batch t read at `offset` is new, late or processed already.

        Processed: the restored state holds it (it ran before a restart), or the previous
        owner processed it above its committed offset (kstream/progress.py); either way it
        is not applied twice. Late: its batch closed here before it arrived."""
        held = self.restored_through
        if held is not None and t <= held[0] and offset < held[1]:
            return Arrival.PROCESSED
        handed = self.handed
        if handed is not None and offset < handed.processed_before(t):
            return Arrival.PROCESSED
        return Arrival.LATE if self.is_closed(t) else Arrival.NEW

    def advance(self, position: int) -> None:
        """The partition is read up to `position` (records, or the end of the partition).
        Call after classifying the records below it: past the last closing its previous
        owner committed, nothing read was processed, and that record is dropped."""
        self.position = position
        handed = self.handed
        if handed is not None and position >= handed.end:
            self.handed = None

    def bucket(self, t: int, offset: int, make: Callable[[], Any] = list) -> Any:
        """The container (from `make`) that collects batch t's records; `offset` is the
        record about to go in (the first of the batch opens it)."""
        records = self.batches.get(t)
        if records is None:
            records = self.batches[t] = make()
            self.first[t] = offset
        return records

    # -- batches -----------------------------------------------------------------------
    def open_times(self) -> list[int]:
        return sorted(self.first)

    def take(self, t: int) -> Any:
        """Remove and return batch t's records (None if it holds none)."""
        self.first.pop(t, None)
        return self.batches.pop(t, None)

    def close_through(self, t: int) -> None:
        """Its batches through t are processed (or about to be, this step)."""
        if self.is_closed(t):
            return
        self.closed_through = t
        if self.closings is None:
            self.closings = Closings()
        self.closings.closed(t, self.position or 0)

    # -- committing --------------------------------------------------------------------
    def commit_offset(self) -> int | None:
        """The lowest offset not yet in a processed batch (docs/design.md §5); None
        before anything was read."""
        if self.position is None:
            return None
        return min(self.first.values()) if self.first else self.position

    def progress(self, offset: int) -> str:
        """The metadata of its commit at `offset` (kstream/progress.py)."""
        return "" if self.closings is None else self.closings.committed(offset)
