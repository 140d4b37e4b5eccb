"""What every stage does at run time: assign and revoke partitions, close batches in
order (one at a time when asked), catch a joining partition up, place late records."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from kstream.clocks import TP, Closer, MarkerClock, SourceClock
from kstream.plan import Stage
from kstream.progress import Closings
from kstream.settings import Settings
from kstream.stages.partition_task import PartitionTask

Run = tuple[int, tuple[TP, ...]]  # a batch time and the partitions whose records it takes


class StageRuntime:
    """A stage's partitions, a PartitionTask each (kstream/stages/partition_task.py), and
    the order in which their batches close."""

    every_interval = True  # close every interval (empty batches too), or only announced ones
    clock: SourceClock | MarkerClock

    def __init__(self, stage: Stage, interval_ms: int, settings: Settings):
        self.stage = stage
        self.interval = interval_ms
        self.settings = settings
        self.closer = Closer(interval_ms, settings.max_empty_batches)
        self.tasks: dict[TP, PartitionTask] = {}  # per assigned partition
        self.late = 0

    @property
    def assigned(self) -> set[TP]:
        return set(self.tasks)

    def new_task(self, tp: TP, handed: Closings | None) -> PartitionTask:
        """A partition's task as it joins the stage."""
        raise NotImplementedError

    def assign(self, tps: list[TP], handed: dict[TP, Closings] | None = None) -> None:
        """Take partitions over, each where its committed offset and `handed` (the
        closings its previous owner committed with it) leave it."""
        for tp in tps:
            self.tasks[tp] = self.new_task(tp, (handed or {}).get(tp))

    def assign_restored(
        self, tp: TP, handed: dict[TP, Closings], restored_through: tuple[int, int] | None
    ) -> None:
        """Take over a partition whose stores were just restored: the input they hold
        through (batch, input position) `restored_through` is not applied again."""
        self.assign([tp], handed)
        self.tasks[tp].restored_through = restored_through

    def revoke(self, tps: list[TP]) -> None:
        """Drop the partitions: their open batches go to the next owner (their offsets
        were not committed, docs/design.md §5)."""
        for tp in tps:
            self.tasks.pop(tp, None)

    def reached_end(self, tp: TP, offset: int) -> None:
        task = self.tasks.get(tp)
        if task is not None:
            task.advance(offset)

    def position(self, tp: TP) -> int:
        """The next offset to read from partition tp (0 before anything was read)."""
        task = self.tasks.get(tp)
        return (task.position or 0) if task is not None else 0

    def positions(self) -> dict[TP, int]:
        """The next offset to read, per partition read from (or to its end)."""
        return {tp: task.position for tp, task in self.tasks.items() if task.position is not None}

    def commit_offsets(self) -> dict[TP, int]:
        """Per partition read from: the lowest offset not yet in a processed batch."""
        out = {}
        for tp, task in self.tasks.items():
            offset = task.commit_offset()
            if offset is not None:
                out[tp] = offset
        return out

    def progress(self, tp: TP, offset: int) -> str:
        """The metadata of partition tp's commit at `offset` (kstream/progress.py)."""
        task = self.tasks.get(tp)
        return "" if task is None else task.progress(offset)

    def _late(self, task: PartitionTask, n: int = 1) -> int | None:
        """The batch n late records of task go to: the oldest open one, or none (dropped
        under late="drop"); counted either way."""
        self.late += n
        if self.settings.late == "drop":
            return None
        done = task.closed_through
        assert done is not None  # late: a batch of it closed
        return max(done, self.closer.closed_through or done) + self.interval

    def _take_open(self, t: int, tps: tuple[TP, ...]) -> dict[TP, Any]:
        """Remove and return batch t's records of partitions tps (those that hold some)."""
        out = {}
        for tp in tps:
            task = self.tasks.get(tp)
            records = None if task is None else task.take(t)
            if records is not None:
                out[tp] = records
        return out

    # -- closing ---------------------------------------------------------------------
    def watermark(self, now_ms: int) -> int | None:
        raise NotImplementedError

    def open_times(self) -> list[int]:
        """The batches some partition holds records of."""
        return sorted(set().union(*(task.first for task in self.tasks.values())))

    def pending(self) -> list[int]:
        return self.open_times()

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
            everyone = tuple(sorted(self.tasks))
            runs.extend((t, everyone) for t in regular)
            for task in self.tasks.values():
                task.close_through(regular[-1])
        return runs

    def _catch_up(self, now_ms: int, limit: int | None) -> list[Run]:
        stage_done = self.closer.closed_through
        if stage_done is None:
            return []
        by_time: dict[int, list[TP]] = defaultdict(list)
        limits: dict[PartitionTask, int] = {}
        for tp, task in self.tasks.items():
            if task.is_closed(stage_done):
                continue
            w = task.clock.watermark()
            if w is None:
                continue
            limits[task] = upto = min(w, stage_done)
            for t in task.open_times():
                if t <= upto and not task.is_closed(t):
                    by_time[t].append(tp)
        times = sorted(by_time)
        if limit is not None and len(times) > limit:
            times = times[:limit]
            cut = times[-1]  # the partitions close through the last run taken
            limits = {task: min(upto, cut) for task, upto in limits.items()}
        for task, upto in limits.items():
            task.close_through(upto)
        return [(t, tuple(sorted(by_time[t]))) for t in times]
