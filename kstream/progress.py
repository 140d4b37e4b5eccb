"""What a partition's committed offset cannot say, carried in the commit's metadata.

The committed offset is the lowest offset not yet in a processed batch (docs/design.md §5), so
when timestamps are out of order across a batch boundary, records above it may already
have been processed: a record of batch T that came after the first record of batch T+1,
while T was still open. The partition's next owner reads them again. To tell them apart,
every commit carries the partition's closings since that offset: at read position `pos`
the partition's batches through `t` were closed. A record of batch b at offset o above
the committed offset was then processed iff b closed at a position above o; a record of
a batch that closed before it arrived was late and still is.

Only the closings above the committed offset are kept (a record read after a closing
cannot have been in the batches it closed), at most MAX_ENTRIES of them: dropping the
oldest only makes their records count as late again (processed twice, never lost).
Brokers that drop commit metadata (Tansu) leave the next owner where it was without it.
"""

from __future__ import annotations

from bisect import bisect_left

PREFIX = "ks1"
MAX_ENTRIES = 64  # keeps the metadata far below Kafka's offset.metadata.max.bytes (4096)


class Closings:
    """A partition's batch closings above its committed offset."""

    def __init__(self, floor: int | None = None, entries: list[tuple[int, int]] | None = None):
        # batches through `floor` closed at or below the committed offset
        self.floor = floor
        self.entries = entries or []  # (batch closed through, read position), both rising

    @property
    def closed_through(self) -> int | None:
        return self.entries[-1][0] if self.entries else self.floor

    @property
    def end(self) -> int:
        """The read position of the last closing: no record from here on was processed."""
        return self.entries[-1][1] if self.entries else 0

    def closed(self, t: int, position: int) -> None:
        """Batches through t are closed now, with the partition read up to `position`."""
        entries = self.entries
        if entries:
            last_t, last_position = entries[-1]
            if t <= last_t:
                return
            if position == last_position:
                entries[-1] = (t, position)
                return
        elif self.floor is not None and t <= self.floor:
            return
        entries.append((t, position))

    def processed_before(self, t: int) -> int:
        """The offset below which batch t's records were processed (0: none were)."""
        if self.floor is not None and t <= self.floor:
            return 0
        i = bisect_left(self.entries, (t, -1))
        return self.entries[i][1] if i < len(self.entries) else 0

    def committed(self, offset: int) -> str:
        """The metadata of a commit at `offset`; forgets the closings at or below it."""
        entries = self.entries
        keep = 0
        while keep < len(entries) and entries[keep][1] <= offset:
            keep += 1
        if len(entries) - keep > MAX_ENTRIES:
            keep = len(entries) - MAX_ENTRIES
        if keep:
            self.floor = entries[keep - 1][0]
            del entries[:keep]
        floor = "" if self.floor is None else str(self.floor)
        return " ".join([PREFIX, floor, *(f"{t}:{p}" for t, p in entries)])

    @classmethod
    def parse(cls, metadata: str | None) -> Closings | None:
        """The closings a commit's metadata carries; None if it carries none of ours."""
        if not metadata or not metadata.startswith(PREFIX + " "):
            return None
        try:
            floor, *pairs = metadata.split(" ")[1:]
            entries = [(int(t), int(p)) for t, p in (pair.split(":") for pair in pairs)]
            return cls(int(floor) if floor else None, entries)
        except ValueError:
            return None
