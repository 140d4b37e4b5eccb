"""When a batch may close: watermarks from record timestamps, markers, or the wall clock.

Batch T (milliseconds, a multiple of the interval I) holds records with T - I <= t < T.
It closes once the watermark reaches T. (Named clocks, not time, to keep the stdlib's
`time` module unshadowed.)
"""

from __future__ import annotations

import bisect
import logging
from collections.abc import Collection, Hashable, Iterable

log = logging.getLogger(__name__)

TP = tuple[str, int]


def batch_of(ts_ms: int, interval_ms: int) -> int:
    """The time of the batch that holds timestamp ts_ms."""
    return ts_ms - ts_ms % interval_ms + interval_ms


class Closer:
    """Tracks the last closed batch and lists the batches now due, in order."""

    def __init__(self, interval_ms: int, max_empty: int):
        self.interval = interval_ms
        self.max_empty = max_empty
        self.closed_through: int | None = None
        self.skipped_empty = 0
        self.empty_run = 0  # empty batches closed in a row

    def due(
        self, watermark: int | None, pending: list[int], every: bool, limit: int | None = None
    ) -> list[int]:
        """Batch times <= watermark to close now, at most `limit` of them (the rest stay
        due). `pending` (sorted) have records.

        every=True closes every interval (empty ones too) but compresses idle gaps longer
        than max_empty batches; every=False closes only the pending ones.
        """
        if watermark is None or limit == 0:
            return []
        i = self.interval
        if self.closed_through is None:
            first = pending[0] if pending else watermark - watermark % i
            if first > watermark:
                return []
            self.closed_through = first - i
        if not every:
            start = bisect.bisect_right(pending, self.closed_through)
            end = bisect.bisect_right(pending, watermark)
            out = pending[start:end][:limit]
        else:
            out = []
            t = self.closed_through + i
            while t <= watermark and (limit is None or len(out) < limit):
                k = bisect.bisect_left(pending, t)
                has_data = k < len(pending) and pending[k] == t
                # counted across calls: a gap closed a few batches at a time is still a gap
                self.empty_run = 0 if has_data else self.empty_run + 1
                out.append(t)
                if self.empty_run >= self.max_empty:
                    # an idle gap: jump to the next batch with data, or to the newest due one
                    nxt = pending[k] if k < len(pending) else watermark - watermark % i
                    if nxt > t + i:
                        self.skipped_empty += (nxt - t) // i - 1
                        log.info("skipping %d empty batches of an idle gap", (nxt - t) // i - 1)
                        t = nxt
                        self.empty_run = 0
                        continue
                t += i
            if out:  # through the last batch taken, or an idle gap skipped after it
                self.closed_through = max(out[-1], min(t - i, watermark - watermark % i))
            return out
        if out:
            self.closed_through = out[-1]
        return out

    def is_late(self, t: int) -> bool:
        return self.closed_through is not None and t <= self.closed_through


NEVER = 2**62  # the watermark of a source partition read to its end


class SourcePartitionClock:
    """One source partition's part of the watermark (docs/design.md §2): the newest
    timestamp read from it, and whether it has been read to its end."""

    def __init__(self, lateness_ms: int):
        self.lateness = lateness_ms
        self.newest: int | None = None
        self.caught_up = False

    def saw(self, ts_ms: int) -> None:
        if ts_ms > (-1 if self.newest is None else self.newest):
            self.newest = ts_ms
        self.caught_up = False

    def reached_end(self) -> None:
        self.caught_up = True

    def watermark(self) -> int | None:
        """Through which batch time this partition alone has all its records: all of
        them once read to its end, none before its first record."""
        if self.caught_up:
            return NEVER
        return None if self.newest is None else self.newest - self.lateness


class SourceClock:
    """Watermark of the source partitions a worker owns (docs/design.md §2).

    The minimum over partitions that still have unread records of (newest timestamp -
    lateness); once every partition is caught up, the wall clock minus lateness.
    """

    def __init__(self, lateness_ms: int):
        self.lateness = lateness_ms

    def partition(self) -> SourcePartitionClock:
        """The clock of a partition joining the stage."""
        return SourcePartitionClock(self.lateness)

    def watermark(self, partitions: Collection[SourcePartitionClock], now_ms: int) -> int | None:
        if not partitions:
            return None
        behind = [p for p in partitions if not p.caught_up]
        if behind:
            if any(p.newest is None for p in behind):
                return None  # not fetched yet: its records may be the oldest
            return min(p.newest for p in behind) - self.lateness  # type: ignore[type-var]
        newest = [p.newest for p in partitions if p.newest is not None]
        return max(now_ms, *newest, 0) - self.lateness


class MarkerPartitionClock:
    """One repartition partition's part of the watermark: per upstream task, the latest
    batch its markers say it closed."""

    def __init__(self, upstream_tasks: int):
        self.expected = upstream_tasks  # how many upstream tasks write to the partition
        self.passed: dict[Hashable, int] = {}

    def marker(self, t: int, tasks: Iterable[Hashable]) -> None:
        passed = self.passed
        for task in tasks:
            if t > passed.get(task, -1):
                passed[task] = t

    def watermark(self) -> int | None:
        """Through which batch every upstream task has written this partition all its
        records (None until every one of them has written a marker)."""
        if len(self.passed) < self.expected:
            return None
        return min(self.passed.values())


class MarkerClock:
    """Watermark of repartition partitions: every upstream task's latest closed batch.

    Upstream tasks write a marker (batch time, their task ids) to every partition after a
    batch's records, so a partition is complete through T once all tasks have passed T.
    """

    def __init__(self, upstream_tasks: dict[str, int]):
        self.expected = upstream_tasks  # topic -> number of upstream tasks writing to it
        self.announced: set[int] = set()  # batches some marker named, records or not

    def partition(self, topic: str) -> MarkerPartitionClock:
        """The clock of a partition of `topic` joining the stage."""
        return MarkerPartitionClock(self.expected[topic])

    def announce(self, t: int) -> None:
        self.announced.add(t)

    def watermark(self, partitions: Collection[MarkerPartitionClock]) -> int | None:
        if not partitions:
            return None
        marks = [p.watermark() for p in partitions]
        return None if None in marks else min(marks)  # type: ignore[type-var]

    def pending(self, with_data: Iterable[int]) -> list[int]:
        return sorted(self.announced.union(with_data))

    def forget_through(self, t: int) -> None:
        self.announced = {a for a in self.announced if a > t}
