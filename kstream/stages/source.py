"""The stage that reads the app's source topics: batches closed by record timestamps, or
by the wall clock once every partition is caught up."""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from itertools import groupby, islice
from operator import itemgetter, le
from typing import Any

from confluent_kafka import Message

from kstream.clocks import TP, Closer, SourceClock, SourcePartitionClock
from kstream.dead_letters import DeadLetter
from kstream.graph import Batch, Node
from kstream.plan import Stage
from kstream.poison import Inputs, TaskBatch
from kstream.progress import Closings
from kstream.serde import deserializer
from kstream.settings import Settings
from kstream.stages.base import StageRuntime
from kstream.stages.partition_task import Arrival, PartitionTask

_value = Message.value
_key = Message.key
_offset = Message.offset
_partition = Message.partition
_timestamp = Message.timestamp
_headers = Message.headers
_second = itemgetter(1)
PROCESSED, LATE = Arrival.PROCESSED, Arrival.LATE


class SourceStage(StageRuntime):
    clock: SourceClock
    tasks: dict[TP, PartitionTask[SourcePartitionClock]]

    def __init__(self, stage: Stage, interval_ms: int, settings: Settings, drain_ms: int = 0):
        """drain_ms: how long after the last record the pipeline's windows still emit.
        An idle gap is skipped only after that many empty batches (its emissions)."""
        super().__init__(stage, interval_ms, settings)
        drain = -(-drain_ms // interval_ms) + 1
        self.closer = Closer(interval_ms, max(settings.max_empty_batches, drain))
        self.clock = SourceClock(round(settings.allowed_lateness * 1000))
        self.event_time = settings.time == "event"
        self.readers: dict[str, list[tuple[Node, Any, Any]]] = defaultdict(list)
        self.template: Inputs = {n: [] for n in stage.sources}
        for node in stage.sources:
            op = node.op
            kdec = deserializer(op.key_serde, "key_serde") if op.keyed else None
            vdec = deserializer(op.value_serde, "value_serde")
            for topic in op.topics:
                self.readers[topic].append((node, kdec, vdec))

    def new_task(self, tp: TP, handed: Closings | None) -> PartitionTask:
        return PartitionTask(tp, self.clock.partition(), handed)

    def reached_end(self, tp: TP, offset: int) -> None:
        super().reached_end(tp, offset)
        task = self.tasks.get(tp)
        if task is not None:
            task.clock.reached_end()

    def watermark(self, now_ms: int) -> int | None:
        return self.clock.watermark([task.clock for task in self.tasks.values()], now_ms)

    def ingest(self, topic: str, msgs: list[Message], now_ms: int) -> None:
        """File records under their batch, a partition's run at a time.

        The hot path: C-level passes over a run (timestamps, min/max); a run within one
        batch (the usual case) is filed whole, a time-ordered one is split by bisection,
        and only a run out of time order is walked record by record.
        """
        interval = self.interval
        for p, group in groupby(msgs, _partition):
            task = self.tasks.get((topic, p))
            if task is None:  # revoked, its records fetched before: its next owner's
                continue
            records = list(group)
            if not self.event_time:
                stamps = list(map(_second, map(_timestamp, records)))
                t = now_ms - now_ms % interval + interval
                self._file_run(task, t, records, stamps, now_ms)
                continue
            stamps = list(map(_second, map(_timestamp, records)))
            lo, hi = min(stamps), max(stamps)
            if lo < 0:  # records without a timestamp take their arrival time
                stamps = [ts if ts >= 0 else now_ms for ts in stamps]
                lo, hi = min(stamps), max(stamps)
            first, last = lo - lo % interval + interval, hi - hi % interval + interval
            if first == last:
                self._file_run(task, first, records, stamps, hi)
            elif all(map(le, stamps, islice(stamps, 1, None))):
                start = 0
                for t in range(first, last + interval, interval):
                    end = bisect_left(stamps, t, start)
                    if end > start:
                        run = records[start:end]
                        self._file_run(task, t, run, stamps[start:end], stamps[end - 1])
                    start = end
            else:
                for ts, m in zip(stamps, records, strict=True):
                    self._file_run(task, ts - ts % interval + interval, [m], [ts], ts)

    def _file_run(
        self, task: PartitionTask, t: int, records: list[Message], stamps: list[int], newest: int
    ) -> None:
        """A run of a partition's records of batch t (offsets rising) into its batch: new
        or late together (one batch), less those processed already."""
        task.clock.saw(newest)
        position = records[-1].offset() + 1
        if task.handed is not None or task.restored_through is not None:
            keep = [
                i for i, m in enumerate(records) if task.arrival(t, m.offset()) is not PROCESSED
            ]
            if len(keep) < len(records):
                records, stamps = [records[i] for i in keep], [stamps[i] for i in keep]
        task.advance(position)
        if not records:
            return
        if task.arrival(t, records[0].offset()) is LATE:
            placed = self._late(task, len(records))
            if placed is None:
                return
            t = placed
        task.bucket(t, records[0].offset(), Columns).add(records, stamps)

    def take(self, t: int, tps: tuple[TP, ...]) -> tuple[Inputs, list[SourceTask]]:
        """Batch t's records of partitions tps, deserialized, a task per partition; and
        the source nodes' values for a batch without records (the template)."""
        by_tp = self._take_open(t, tps)
        tasks = [
            SourceTask(tp, cols, self.readers.get(tp[0], []), t)
            for tp, cols in sorted(by_tp.items())
        ]
        return self.template, tasks


class SourceTask(TaskBatch):
    """A partition's records of a batch: decoded for every source node that reads its
    topic; a record that any of them cannot decode is poison for all of them."""

    def __init__(self, tp: TP, cols: Columns, readers: list[tuple[Node, Any, Any]], t: int):
        super().__init__(tp, t)
        self.cols = cols
        self.readers = readers
        self.records = len(cols.values)
        self.kept: list[int] | None = None  # the records that decoded, if not all
        self.decoded: dict[Node, Batch] = {}  # per source node, aligned with kept
        self._offsets: list[int] | None = None
        try:
            for node, kdec, vdec in readers:
                values = list(map(vdec, cols.values))
                if kdec is not None:
                    values = list(zip(map(kdec, cols.keys), values, strict=True))
                self.decoded[node] = values
        except Exception:
            self._decode_each()
        self.size = self.records if self.kept is None else len(self.kept)

    def _decode_each(self) -> None:
        """The slow path after a failure: find the records that do not decode."""
        cols = self.cols
        self.kept = []
        self.decoded = {node: [] for node, _, _ in self.readers}
        for j, (raw_v, raw_k) in enumerate(zip(cols.values, cols.keys, strict=True)):
            row = []
            try:
                for node, kdec, vdec in self.readers:
                    serde = ("value_serde", node.op.value_serde)  # type: ignore[attr-defined]
                    v = None if raw_v is None else vdec(raw_v)
                    if kdec is not None:
                        serde = ("key_serde", node.op.key_serde)  # type: ignore[attr-defined]
                        v = (None if raw_k is None else kdec(raw_k), v)
                    row.append(v)
            except Exception as e:
                where = f"{node.name} ({serde[0]}={serde[1]})"
                self.letters.append(self._letter(j, "deserialize", e, where))
                continue
            self.kept.append(j)
            for (node, _, _), v in zip(self.readers, row, strict=True):
                self.decoded[node].append(v)

    def inputs(self) -> Inputs:
        if not self.dead:
            return self.decoded  # type: ignore[return-value]
        dead = self.dead
        return {
            node: [v for i, v in enumerate(values) if i not in dead]
            for node, values in self.decoded.items()
        }

    def unit(self, i: int) -> Inputs:
        return {node: [values[i]] for node, values in self.decoded.items()}

    def letter(self, i: int, reason: str, error: BaseException, operator: str | None):
        return self._letter(i if self.kept is None else self.kept[i], reason, error, operator)

    def _letter(self, j: int, reason: str, error: BaseException, operator: str | None):
        """The dead letter of the j-th record taken in."""
        cols = self.cols
        if self._offsets is None:
            self._offsets = cols.offsets()
        stamp = cols.stamps[j]
        return DeadLetter.of(
            reason,
            error,
            operator,
            topic=self.tp[0],
            partition=self.tp[1],
            offset=self._offsets[j],
            key=cols.keys[j],
            value=cols.values[j],
            timestamp=stamp if stamp >= 0 else self.t,
            batch=self.t,
            headers=cols.headers[j],
        )


class Columns:
    """A run of source records as plain columns. Holding bytes and ints rather than
    Message objects keeps buffered backlogs out of the garbage collector's way. Keys,
    headers and timestamps are kept for every record: a poison record goes to the
    dead-letter topic as it was read."""

    __slots__ = ("headers", "keys", "runs", "stamps", "values")

    def __init__(self) -> None:
        self.values: list[bytes | None] = []
        self.keys: list[bytes | None] = []
        self.headers: list[list[tuple[str, bytes | None]] | None] = []
        self.stamps: list[int] = []  # timestamps (ms)
        # offsets, as (first, count) for a gapless run, or the run's list of offsets
        self.runs: list[tuple[int, int] | list[int]] = []

    def add(self, records: list[Message], stamps: list[int]) -> None:
        self.values.extend(map(_value, records))
        self.keys.extend(map(_key, records))
        self.headers.extend(map(_headers, records))
        self.stamps.extend(stamps)
        first, last = records[0].offset(), records[-1].offset()
        if last - first + 1 == len(records):
            self.runs.append((first, len(records)))
        else:  # gaps (transaction markers, compaction): keep every offset
            self.runs.append(list(map(_offset, records)))

    def offsets(self) -> list[int]:
        """Every record's offset (only needed to dead-letter a record)."""
        out: list[int] = []
        for run in self.runs:
            out.extend(run if isinstance(run, list) else range(run[0], run[0] + run[1]))
        return out
