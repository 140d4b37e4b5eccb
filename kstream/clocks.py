"""When a batch may close: watermarks from record timestamps, markers, or the wall clock.

Batch T (milliseconds, a multiple of the interval I) holds records with T - I <= t < T.
It closes once the watermark reaches T. (Named clocks, not time, to keep the stdlib's
`time` module unshadowed.)
"""

from __future__ import annotations

import bisect
import logging
from collections.abc import Hashable, Iterable

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


class SourceClock:
    """Watermark of the source partitions a worker owns (docs/design.md §2).

    The minimum over partitions that still have unread records of (newest timestamp -
    lateness); once every partition is caught up, the wall clock minus lateness.
    """

    def __init__(self, lateness_ms: int):
        self.lateness = lateness_ms
        self.newest: dict[TP, int] = {}
        self.caught_up: dict[TP, bool] = {}

    def assign(self, tps: Iterable[TP]) -> None:
        for tp in tps:
            self.caught_up.setdefault(tp, False)

    def revoke(self, tps: Iterable[TP]) -> None:
        for tp in tps:
            self.caught_up.pop(tp, None)
            self.newest.pop(tp, None)

    def saw(self, tp: TP, ts_ms: int) -> None:
        if ts_ms > self.newest.get(tp, -1):
            self.newest[tp] = ts_ms
        self.caught_up[tp] = False

    def reached_end(self, tp: TP) -> None:
        if tp in self.caught_up:
            self.caught_up[tp] = True

    def watermark(self, now_ms: int) -> int | None:
        if not self.caught_up:
            return None
        behind = [tp for tp, done in self.caught_up.items() if not done]
        if behind:
            if any(tp not in self.newest for tp in behind):
                return None  # not fetched yet: its records may be the oldest
            return min(self.newest[tp] for tp in behind) - self.lateness
        return max(now_ms, *self.newest.values(), 0) - self.lateness


class MarkerClock:
    """Watermark of repartition partitions: every upstream task's latest closed batch.

    Upstream tasks write a marker (batch time, their task ids) to every partition after a
    batch's records, so a partition is complete through T once all tasks have passed T.
    """

    def __init__(self, upstream_tasks: dict[str, int]):
        self.expected = upstream_tasks  # topic -> number of upstream tasks writing to it
        self.closed: dict[TP, dict[Hashable, int]] = {}
        self.announced: set[int] = set()

    def assign(self, tps: Iterable[TP]) -> None:
        for tp in tps:
            self.closed.setdefault(tp, {})

    def revoke(self, tps: Iterable[TP]) -> None:
        for tp in tps:
            self.closed.pop(tp, None)

    def marker(self, tp: TP, t: int, tasks: Iterable[Hashable]) -> None:
        seen = self.closed.get(tp)
        if seen is None:
            return
        for task in tasks:
            if t > seen.get(task, -1):
                seen[task] = t
        self.announced.add(t)

    def partition_watermark(self, tp: TP) -> int | None:
        seen = self.closed.get(tp)
        if seen is None or len(seen) < self.expected[tp[0]]:
            return None
        return min(seen.values())

    def watermark(self) -> int | None:
        if not self.closed:
            return None
        marks = [self.partition_watermark(tp) for tp in self.closed]
        return None if None in marks else min(marks)  # type: ignore[type-var]

    def pending(self, with_data: Iterable[int]) -> list[int]:
        return sorted(self.announced.union(with_data))

    def forget_through(self, t: int) -> None:
        self.announced = {a for a in self.announced if a > t}
