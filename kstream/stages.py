"""A stage at run time: it takes in its partitions' records and hands out closed batches.

SourceStage reads the app's source topics and closes batches by record timestamps (or the
wall clock once caught up); ExchangeStage reads repartition topics and closes a batch once
every upstream task's marker for it has arrived.

A partition that joins a running stage (after a rebalance or a restart) may hold records
of batches the stage has already closed: they are not late, they were never processed
here. It catches up in runs of its own, each batch with its own records, before it joins
the stage's regular batches; so a batch's result does not depend on who owned what when.
"""

from __future__ import annotations

import logging
from bisect import bisect_left
from collections import defaultdict
from itertools import groupby, islice, repeat
from operator import itemgetter, le
from typing import Any

from confluent_kafka import Message

from kstream.batches import OpenBatches
from kstream.clocks import TP, Closer, MarkerClock, SourceClock
from kstream.codec import Codec, refused
from kstream.dead_letters import DeadLetter, operator_name
from kstream.errors import ConfigError, FormatError
from kstream.graph import Batch, Node
from kstream.kafka import exchange
from kstream.plan import Stage
from kstream.poison import Inputs, PoisonRecordError, TaskBatch
from kstream.progress import Closings
from kstream.serde import deserializer
from kstream.settings import Settings

log = logging.getLogger(__name__)

_value = Message.value
_key = Message.key
_offset = Message.offset
_partition = Message.partition
_timestamp = Message.timestamp
_headers = Message.headers
_second = itemgetter(1)
NEVER = 2**62  # the watermark of a partition that has been read to its end

Run = tuple[int, tuple[TP, ...]]  # a batch time and the partitions whose records it takes
__all__ = ["ExchangeStage", "PoisonRecordError", "SourceStage", "StageRuntime"]


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
            times = times[:limit]  # the partitions close through the last run taken
            cut = times[-1] if times else None
            limits = {tp: min(upto, cut) for tp, upto in limits.items() if cut is not None}
        for tp, upto in limits.items():
            self._close(tp, upto)
        return [(t, tuple(sorted(by_time[t]))) for t in times]


class SourceStage(StageRuntime):
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

    def reached_end(self, tp: TP, offset: int) -> None:
        super().reached_end(tp, offset)
        self.clock.reached_end(tp)

    def partition_watermark(self, tp, now_ms):
        if self.clock.caught_up.get(tp):
            return NEVER
        newest = self.clock.newest.get(tp)
        return None if newest is None else newest - self.clock.lateness

    def watermark(self, now_ms):
        return self.clock.watermark(now_ms)

    def ingest(self, topic: str, msgs: list[Message], now_ms: int) -> None:
        """File records under their batch, a partition's run at a time.

        The hot path: C-level passes over a run (timestamps, min/max); a run within one
        batch (the usual case) is filed whole, a time-ordered one is split by bisection,
        and only a run out of time order is walked record by record.
        """
        interval = self.interval
        for p, group in groupby(msgs, _partition):
            records = list(group)
            tp = (topic, p)
            if not self.event_time:
                stamps = list(map(_second, map(_timestamp, records)))
                t = now_ms - now_ms % interval + interval
                self._file_run(tp, t, records, stamps, now_ms)
                continue
            stamps = list(map(_second, map(_timestamp, records)))
            lo, hi = min(stamps), max(stamps)
            if lo < 0:  # records without a timestamp take their arrival time
                stamps = [ts if ts >= 0 else now_ms for ts in stamps]
                lo, hi = min(stamps), max(stamps)
            first, last = lo - lo % interval + interval, hi - hi % interval + interval
            if first == last:
                self._file_run(tp, first, records, stamps, hi)
            elif all(map(le, stamps, islice(stamps, 1, None))):
                start = 0
                for t in range(first, last + interval, interval):
                    end = bisect_left(stamps, t, start)
                    if end > start:
                        run = records[start:end]
                        self._file_run(tp, t, run, stamps[start:end], stamps[end - 1])
                    start = end
            else:
                for ts, m in zip(stamps, records, strict=True):
                    self._file_run(tp, ts - ts % interval + interval, [m], [ts], ts)

    def _file_run(
        self, tp: TP, t: int, records: list[Message], stamps: list[int], newest: int
    ) -> None:
        self.open.position[tp] = records[-1].offset() + 1
        self.clock.saw(tp, newest)
        handed = self.handed.get(tp)
        if handed is not None:  # its previous owner may have processed some of them
            below = handed.processed_before(t)
            if records[0].offset() < below:
                cut = bisect_left([m.offset() for m in records], below)
                records, stamps = records[cut:], stamps[cut:]
            if self.open.position[tp] >= handed.end:
                del self.handed[tp]
            if not records:
                return
        done = self.closed.get(tp)
        if done is not None and t <= done:
            placed = self._placed(tp, t, len(records))
            if placed is None:
                return
            t = placed
        self.open.bucket(t, tp, records[0].offset(), Columns).add(records, stamps)

    def take(self, t: int, tps: tuple[TP, ...]) -> tuple[Inputs, list[SourceTask]]:
        """Batch t's records of partitions tps, deserialized, a task per partition; and
        the source nodes' values for a batch without records (the template)."""
        by_tp = self.open.take(t, tps)
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


class ExchangeStage(StageRuntime):
    every_interval = False

    def __init__(
        self,
        stage: Stage,
        interval_ms: int,
        settings: Settings,
        upstream: dict,
        codecs: dict[str, Codec],
    ):
        super().__init__(stage, interval_ms, settings)
        self.codecs = codecs  # per repartition topic
        self.clock = MarkerClock(upstream)
        self.emitted: dict[int, set[tuple[str, int]]] = defaultdict(set)
        # batch -> partition -> the writers (runs upstream) whose marker came
        self.finished: dict[int, dict[TP, set[int]]] = defaultdict(lambda: defaultdict(set))
        self.abandoned = 0  # records dropped: their run never finished (kstream/kafka/exchange.py)
        self.side_nodes = {(x.topic, i): n for x in stage.reads for i, n in enumerate(x.sides)}

    def partition_watermark(self, tp, now_ms):
        return self.clock.partition_watermark(tp)

    def watermark(self, now_ms):
        return self.clock.watermark()

    def pending(self) -> list[int]:
        return self.clock.pending(self.open.times())

    def ingest(self, topic: str, msgs: list[Message], now_ms: int) -> None:
        """File each frame's records under their batch. A frame not in the topic's format
        (its header) is not read: the worker stops (FormatError)."""
        position = self.open.position
        closed = self.closed
        codec = self.codecs[topic]
        expected = codec.headers
        for m in msgs:
            tp = (topic, m.partition())
            if m.headers() != expected:
                raise refused(m.headers(), codec, f"{topic}[{tp[1]}]@{m.offset()}")
            t, side, payload, writer = _decode(m, codec)
            position[tp] = m.offset() + 1
            done = closed.get(tp)
            if side == exchange.MARKER:
                tasks, sides = payload[0]
                self.clock.marker(tp, t, tasks)
                self.emitted[t].update((topic, s) for s in sides)
                if done is None or t > done:
                    self.finished[t][tp].add(writer)
                continue
            held = self.skip_through.get(tp)
            if held is not None and t <= held[0] and m.offset() < held[1]:
                continue  # it ran before a restart: the restored state holds it
            handed = self.handed.get(tp)
            if handed is not None:
                if position[tp] >= handed.end:
                    del self.handed[tp]
                if m.offset() < handed.processed_before(t):
                    continue  # its previous owner processed it (kstream/progress.py)
            if done is not None and t <= done:
                placed = self._placed(tp, t, len(payload))
                if placed is None:
                    continue
                t, writer = placed, None  # late: kept, whether its run finished or not
            offset = m.offset()
            rows = zip(repeat(side), payload, repeat(offset), repeat(writer), strict=False)
            self.open.bucket(t, tp, offset).extend(rows)  # (C-level: a frame holds thousands)

    def revoke(self, tps: list[TP]) -> None:
        super().revoke(tps)
        for by_tp in self.finished.values():
            for tp in tps:
                by_tp.pop(tp, None)

    def take(self, t: int, tps: tuple[TP, ...]) -> tuple[Inputs, list[ExchangeTask]]:
        """Batch t's records of partitions tps, a task per partition, and the side nodes'
        values for a task without records: [] for a side some upstream task wrote in this
        batch (markers say so), None (no result) for the others."""
        by_tp = self.open.take(t, tps)
        emitted = self.emitted.get(t, set())
        finished = self.finished.get(t, {})
        for tp in tps:
            complete = finished.pop(tp, set())
            rows = by_tp.get(tp)
            if rows:
                by_tp[tp] = self._of_complete_runs(t, tp, rows, complete)
        if not finished:
            self.finished.pop(t, None)
        if self.closer.closed_through is not None and t <= self.closer.closed_through:
            self.emitted.pop(t, None)
            self.finished.pop(t, None)
            self.clock.forget_through(t)
        template: Inputs = {
            n: ([] if key in emitted else None) for key, n in self.side_nodes.items()
        }
        # every partition of the run has a task, records or not: state ops run every batch
        tasks = [
            ExchangeTask(tp, by_tp.get(tp, []), self.side_nodes, t, self.codecs[tp[0]])
            for tp in sorted(tps)
        ]
        return template, tasks

    def _of_complete_runs(self, t: int, tp: TP, rows: list, complete: set[int]) -> list:
        """The rows of batch t whose run upstream wrote its marker.

        A run whose marker has not come when the batch closes never finished (its worker
        was killed, or its step failed): the batch closed on markers of the same tasks
        from elsewhere, their next owner's run of them. Its input offsets were not
        committed, so that run read all its records again: without the dropped rows a
        count holds each record once (a run killed after its marker, before its commit,
        still counts twice: at-least-once)."""
        kept = [r for r in rows if r[3] is None or r[3] in complete]
        if len(kept) < len(rows):
            self.abandoned += len(rows) - len(kept)
            log.info(
                "batch %d of %s[%d]: dropped %d records of an upstream run that never "
                "finished (its batch was run again)",
                t,
                *tp,
                len(rows) - len(kept),
            )
        return kept


def _decode(m: Message, codec: Codec) -> tuple[int, int, list, int]:
    try:
        return exchange.decode(m.value(), codec)
    except Exception as e:
        raise FormatError(
            f"{m.topic()}[{m.partition()}]@{m.offset()}: a record that {codec.format} "
            f"cannot read ({type(e).__name__}: {e}); the worker stops"
        ) from e


class ExchangeTask(TaskBatch):
    """A repartition partition's records of a batch: (side, intermediate record, offset
    of its frame, writer). Its dead letters hold a record as a frame of its own, in the
    topic's format (and with its header)."""

    def __init__(
        self,
        tp: TP,
        records: list,
        side_nodes: dict[tuple[str, int], Node],
        t: int,
        codec: Codec,
    ):
        super().__init__(tp, t)
        self.codec = codec
        self.rows = records
        self.nodes = {side: n for (topic, side), n in side_nodes.items() if topic == tp[0]}
        self.records = self.size = len(records)

    def inputs(self) -> Inputs:
        out: dict[Node, Batch | None] = {}
        dead, nodes = self.dead, self.nodes
        for i, (side, payload, _, _) in enumerate(self.rows):
            if i not in dead:
                node = nodes[side]
                batch = out.get(node)
                if batch is None:
                    batch = out[node] = []
                batch.append(payload)
        return out

    def unit(self, i: int) -> Inputs:
        side, payload, _, _ = self.rows[i]
        return {self.nodes[side]: [payload]}

    def letter(self, i: int, reason: str, error: BaseException, operator: str | None):
        side, payload, offset, writer = self.rows[i]
        return DeadLetter.of(
            reason,
            error,
            operator,
            topic=self.tp[0],
            partition=self.tp[1],
            offset=offset,
            key=None,
            value=exchange.encode(self.t, side, [payload], writer, self.codec),
            timestamp=self.t,
            batch=self.t,
            headers=self.codec.headers,
        )

    def late(self, node: Node, record: Any, why: str) -> DeadLetter:
        """A record a `late="dlq"` operator turned away (it combines a key's records of
        the batch, so it has no offset of its own)."""
        return DeadLetter(
            "late",
            "LateRecord",
            why,
            operator_name(node),
            self.tp[0],
            self.tp[1],
            None,
            None,
            exchange.encode(self.t, 0, [record], 0, self.codec),  # (no writer: not sent on)
            self.t,
            self.t,
            self.codec.headers,
        )


def upstream_tasks(stage: Stage, partitions: dict[str, int]) -> int:
    """How many tasks (input partitions) a stage has: each writes markers downstream."""
    try:
        return sum(partitions[t] for t in stage.input_topics())
    except KeyError as e:
        raise ConfigError(f"topic {e.args[0]!r} does not exist") from None
