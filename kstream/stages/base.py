"""What every stage does at run time: assign and revoke partitions, close batches in
order (one at a time when asked), catch a joining partition up, place late records."""

from __future__ import annotations

from collections import defaultdict

from kstream.batches import OpenBatches
from kstream.clocks import TP, Closer, MarkerClock, SourceClock
from kstream.plan import Stage
from kstream.progress import Closings
from kstream.settings import Settings

Run = tuple[int, tuple[TP, ...]]  # a batch time and the partitions whose records it takes


class StageRuntime:
    every_interval = True  # close every interval (empty batches too), or only announced ones
    clock: SourceClock | MarkerClock

    def __init__(self, stage: Stage, interval_ms: int, settings: Settings):
        self.stage = stage
        self.interval = interval_ms
        self.settings = settings
        self.open = OpenBatches()
        self.closer = Closer(interval_ms, settings.max_empty_batches)
        self.closed: dict[TP, int | None] = {}  # per partition: last batch processed here
        self.closings: dict[TP, Closings] = {}  # what a commit says beyond its offset
        # per partition, from its previous owner's commit: which records above the
        # committed offset it processed (kstream/progress.py)
        self.handed: dict[TP, Closings] = {}
        # per partition: (batch, input position) through which restored state holds it all
        self.skip_through: dict[TP, tuple[int, int]] = {}
        self.late = 0

    @property
    def assigned(self) -> set[TP]:
        return set(self.closed)

    def assign(self, tps: list[TP], handed: dict[TP, Closings] | None = None) -> None:
        """Take partitions over, each where its committed offset and `handed` (the
        closings its previous owner committed with it) leave it."""
        for tp in tps:
            closings = (handed or {}).get(tp)
            if closings is None:
                self.closed[tp] = None
                continue
            self.closed[tp] = closings.closed_through
            self.closings[tp] = closings
            if closings.entries:
                self.handed[tp] = Closings(closings.floor, list(closings.entries))
        self.clock.assign(tps)

    def revoke(self, tps: list[TP]) -> None:
        for tp in tps:
            self.closed.pop(tp, None)
            self.closings.pop(tp, None)
            self.handed.pop(tp, None)
            self.skip_through.pop(tp, None)
        self.open.drop(tps)
        self.clock.revoke(tps)

    def reached_end(self, tp: TP, offset: int) -> None:
        self.open.position[tp] = offset

    def _close(self, tp: TP, t: int) -> None:
        """Partition tp's batches through t are processed (or about to be, this step)."""
        done = self.closed.get(tp)
        if done is not None and t <= done:
            return
        self.closed[tp] = t
        closings = self.closings.get(tp)
        if closings is None:
            closings = self.closings[tp] = Closings()
        closings.closed(t, self.open.position.get(tp, 0))

    def progress(self, tp: TP, offset: int) -> str:
        """The metadata of partition tp's commit at `offset` (kstream/progress.py)."""
        closings = self.closings.get(tp)
        return "" if closings is None else closings.committed(offset)

    def _placed(self, tp: TP, t: int, n: int = 1) -> int | None:
        """The batch n records of batch t go to: their own, the oldest open one, or none."""
        done = self.closed.get(tp)
        if done is None or t > done:
            return t
        self.late += n
        if self.settings.late == "drop":
            return None
        return max(done, self.closer.closed_through or done) + self.interval

    # -- closing ---------------------------------------------------------------------
    def partition_watermark(self, tp: TP, now_ms: int) -> int | None:
        raise NotImplementedError

    def watermark(self, now_ms: int) -> int | None:
        raise NotImplementedError

    def pending(self) -> list[int]:
        return self.open.times()

    def due(self, now_ms: int, limit: int | None = None) -> list[Run]:
        """The runs to process now, in order, at most `limit` of them: partitions
        catching up first. Only the runs returned are closed; the others stay due."""
        if limit == 0:
            return []
        runs = self._catch_up(now_ms, limit)
        if limit is not None:
            limit -= len(runs)
        regular = self.closer.due(
            self.watermark(now_ms), self.pending(), self.every_interval, limit
        )
        if regular:
            everyone = tuple(sorted(self.closed))
            runs.extend((t, everyone) for t in regular)
            for tp in everyone:
                self._close(tp, regular[-1])
        return runs

    def _catch_up(self, now_ms: int, limit: int | None) -> list[Run]:
        stage_done = self.closer.closed_through
        if stage_done is None:
            return []
        by_time: dict[int, list[TP]] = defaultdict(list)
        limits: dict[TP, int] = {}
        for tp, done in self.closed.items():
            if done is not None and done >= stage_done:
                continue
            w = self.partition_watermark(tp, now_ms)
            if w is None:
                continue
            limits[tp] = upto = min(w, stage_done)
            for t in self.open.times_of(tp):
                if t <= upto and (done is None or t > done):
                    by_time[t].append(tp)
        times = sorted(by_time)
        if limit is not None and len(times) > limit:
            times = times[:limit]
            cut = times[-1]  # the partitions close through the last run taken
            limits = {tp: min(upto, cut) for tp, upto in limits.items()}
        for tp, upto in limits.items():
            self._close(tp, upto)
        return [(t, tuple(sorted(by_time[t]))) for t in times]
