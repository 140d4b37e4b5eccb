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
from itertools import groupby, islice
from operator import itemgetter, le
from typing import Any

from confluent_kafka import Message

from kstream.batches import OpenBatches
from kstream.clocks import TP, Closer, MarkerClock, SourceClock
from kstream.errors import ConfigError
from kstream.graph import Batch, Node
from kstream.kafka import exchange
from kstream.plan import Stage
from kstream.serde import deserializer
from kstream.settings import Settings

log = logging.getLogger(__name__)

_value = Message.value
_key = Message.key
_offset = Message.offset
_partition = Message.partition
_timestamp = Message.timestamp
_second = itemgetter(1)
NEVER = 2**62  # the watermark of a partition that has been read to its end

Run = tuple[int, tuple[TP, ...]]  # a batch time and the partitions whose records it takes


class PoisonRecordError(RuntimeError):
    """A record failed and the on_error policy is "fail"."""


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
        # per partition: (batch, input position) through which restored state holds it all
        self.skip_through: dict[TP, tuple[int, int]] = {}
        self.late = 0
        self.dropped = 0

    @property
    def assigned(self) -> set[TP]:
        return set(self.closed)

    def assign(self, tps: list[TP]) -> None:
        for tp in tps:
            self.closed[tp] = None
        self.clock.assign(tps)

    def revoke(self, tps: list[TP]) -> None:
        for tp in tps:
            self.closed.pop(tp, None)
            self.skip_through.pop(tp, None)
        self.open.drop(tps)
        self.clock.revoke(tps)

    def reached_end(self, tp: TP, offset: int) -> None:
        self.open.position[tp] = offset

    def _placed(self, tp: TP, t: int, n: int = 1) -> int | None:
        """The batch n records of batch t go to: their own, the oldest open one, or none."""
        done = self.closed.get(tp)
        if done is None or t > done:
            return t
        self.late += n
        if self.settings.late == "drop":
            self.dropped += n
            return None
        return max(done, self.closer.closed_through or done) + self.interval

    # -- closing ---------------------------------------------------------------------
    def partition_watermark(self, tp: TP, now_ms: int) -> int | None:
        raise NotImplementedError

    def watermark(self, now_ms: int) -> int | None:
        raise NotImplementedError

    def pending(self) -> list[int]:
        return self.open.times()

    def due(self, now_ms: int) -> list[Run]:
        """The runs to process now, in order: partitions catching up first."""
        runs = self._catch_up(now_ms)
        regular = self.closer.due(self.watermark(now_ms), self.pending(), self.every_interval)
        if regular:
            everyone = tuple(sorted(self.closed))
            runs.extend((t, everyone) for t in regular)
            for tp in self.closed:
                self.closed[tp] = regular[-1]
        return runs

    def _catch_up(self, now_ms: int) -> list[Run]:
        stage_done = self.closer.closed_through
        if stage_done is None:
            return []
        by_time: dict[int, list[TP]] = defaultdict(list)
        for tp, done in self.closed.items():
            if done is not None and done >= stage_done:
                continue
            w = self.partition_watermark(tp, now_ms)
            if w is None:
                continue
            limit = min(w, stage_done)
            for t in self.open.times_of(tp):
                if t <= limit and (done is None or t > done):
                    by_time[t].append(tp)
            self.closed[tp] = limit if done is None else max(done, limit)
        return [(t, tuple(sorted(tps))) for t, tps in sorted(by_time.items())]


class SourceStage(StageRuntime):
    def __init__(self, stage: Stage, interval_ms: int, settings: Settings):
        super().__init__(stage, interval_ms, settings)
        self.clock = SourceClock(round(settings.allowed_lateness * 1000))
        self.event_time = settings.time == "event"
        self.readers: dict[str, list[tuple[Node, Any, Any]]] = defaultdict(list)
        for node in stage.sources:
            op = node.op
            kdec = deserializer(op.key_serde, "key_serde") if op.keyed else None
            vdec = deserializer(op.value_serde, "value_serde")
            for topic in op.topics:
                self.readers[topic].append((node, kdec, vdec))
        self.keyed = {t for t, readers in self.readers.items() if any(r[1] for r in readers)}

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
                self._file_run(tp, now_ms - now_ms % interval + interval, records, now_ms)
                continue
            stamps = list(map(_second, map(_timestamp, records)))
            lo, hi = min(stamps), max(stamps)
            if lo < 0:  # records without a timestamp take their arrival time
                stamps = [ts if ts >= 0 else now_ms for ts in stamps]
                lo, hi = min(stamps), max(stamps)
            first, last = lo - lo % interval + interval, hi - hi % interval + interval
            if first == last:
                self._file_run(tp, first, records, hi)
            elif all(map(le, stamps, islice(stamps, 1, None))):
                start = 0
                for t in range(first, last + interval, interval):
                    end = bisect_left(stamps, t, start)
                    if end > start:
                        self._file_run(tp, t, records[start:end], stamps[end - 1])
                    start = end
            else:
                for ts, m in zip(stamps, records, strict=True):
                    self._file_run(tp, ts - ts % interval + interval, [m], ts)

    def _file_run(self, tp: TP, t: int, records: list[Message], newest: int) -> None:
        self.open.position[tp] = records[-1].offset() + 1
        self.clock.saw(tp, newest)
        done = self.closed.get(tp)
        if done is not None and t <= done:
            placed = self._placed(tp, t, len(records))
            if placed is None:
                return
            t = placed
        self.open.bucket(t, tp, records[0].offset(), Columns).add(records, tp[0] in self.keyed)

    def take(self, t: int, tps: tuple[TP, ...]) -> dict[Node, Batch | None]:
        """Batch t's records of partitions tps, deserialized, as the source nodes' values."""
        by_tp = self.open.take(t, tps)
        values: dict[Node, Batch | None] = {n: [] for n in self.stage.sources}
        for (topic, p), cols in sorted(by_tp.items()):
            for node, kdec, vdec in self.readers.get(topic, ()):
                values[node].extend(self._decode(topic, p, cols, kdec, vdec))  # type: ignore[union-attr]
        return values

    def _decode(self, topic: str, p: int, cols: Columns, kdec, vdec) -> Batch:
        try:
            values = list(map(vdec, cols.values))
            if kdec is None:
                return values
            return list(zip(map(kdec, cols.keys), values, strict=True))
        except Exception:
            return self._decode_each(topic, p, cols, kdec, vdec)

    def _decode_each(self, topic: str, p: int, cols: Columns, kdec, vdec) -> Batch:
        """The slow path after a failure: find the culprits, keep the rest."""
        out: Batch = []
        keys = cols.keys or [None] * len(cols.values)
        for raw_v, raw_k, offset in zip(cols.values, keys, cols.offsets(), strict=True):
            try:
                v = None if raw_v is None else vdec(raw_v)
                out.append(v if kdec is None else (None if raw_k is None else kdec(raw_k), v))
            except Exception as e:
                where = f"{topic}[{p}]@{offset}"
                if self.settings.on_error == "fail":
                    raise PoisonRecordError(f"cannot deserialize {where}: {e!r}") from e
                self.dropped += 1
                log.warning("skipping record %s: cannot deserialize: %r", where, e)
        return out


class Columns:
    """A run of source records as plain columns. Holding bytes and ints rather than
    Message objects keeps buffered backlogs out of the garbage collector's way."""

    __slots__ = ("keys", "runs", "values")

    def __init__(self) -> None:
        self.values: list[bytes | None] = []
        self.keys: list[bytes | None] = []  # only for keyed sources
        # offsets, as (first, count) for a gapless run, or the run's list of offsets
        self.runs: list[tuple[int, int] | list[int]] = []

    def add(self, records: list[Message], keyed: bool) -> None:
        self.values.extend(map(_value, records))
        first, last = records[0].offset(), records[-1].offset()
        if last - first + 1 == len(records):
            self.runs.append((first, len(records)))
        else:  # gaps (transaction markers, compaction): keep every offset
            self.runs.append(list(map(_offset, records)))
        if keyed:
            self.keys.extend(map(_key, records))

    def offsets(self) -> list[int]:
        """Every record's offset (only needed to report a bad record)."""
        out: list[int] = []
        for run in self.runs:
            out.extend(run if isinstance(run, list) else range(run[0], run[0] + run[1]))
        return out


class ExchangeStage(StageRuntime):
    every_interval = False

    def __init__(self, stage: Stage, interval_ms: int, settings: Settings, upstream: dict):
        super().__init__(stage, interval_ms, settings)
        self.clock = MarkerClock(upstream)
        self.emitted: dict[int, set[tuple[str, int]]] = defaultdict(set)
        self.side_nodes = {(x.topic, i): n for x in stage.reads for i, n in enumerate(x.sides)}

    def partition_watermark(self, tp, now_ms):
        return self.clock.partition_watermark(tp)

    def watermark(self, now_ms):
        return self.clock.watermark()

    def pending(self) -> list[int]:
        return self.clock.pending(self.open.times())

    def ingest(self, topic: str, msgs: list[Message], now_ms: int) -> None:
        decode = exchange.decode
        position = self.open.position
        closed = self.closed
        for m in msgs:
            tp = (topic, m.partition())
            position[tp] = m.offset() + 1
            t, side, payload = decode(m.value())
            if side == exchange.MARKER:
                tasks, sides = payload
                self.clock.marker(tp, t, tasks)
                self.emitted[t].update((topic, s) for s in sides)
                continue
            held = self.skip_through.get(tp)
            if held is not None and t <= held[0] and m.offset() < held[1]:
                continue  # it ran before a restart: the restored state holds it
            done = closed.get(tp)
            if done is not None and t <= done:
                placed = self._placed(tp, t)
                if placed is None:
                    continue
                t = placed
            self.open.bucket(t, tp, m.offset()).append((side, payload))

    def take(self, t: int, tps: tuple[TP, ...]) -> dict[Node, Batch | None]:
        by_tp = self.open.take(t, tps)
        emitted = self.emitted.get(t, set())
        if self.closer.closed_through is not None and t <= self.closer.closed_through:
            self.emitted.pop(t, None)
            self.clock.forget_through(t)
        values: dict[Node, Batch | None] = {
            n: ([] if key in emitted else None) for key, n in self.side_nodes.items()
        }
        for (topic, _), records in sorted(by_tp.items()):
            for side, record in records:
                node = self.side_nodes[(topic, side)]
                batch = values[node]
                if batch is None:
                    batch = values[node] = []
                batch.append(record)
        return values


def upstream_tasks(stage: Stage, partitions: dict[str, int]) -> int:
    """How many tasks (input partitions) a stage has: each writes markers downstream."""
    try:
        return sum(partitions[t] for t in stage.input_topics())
    except KeyError as e:
        raise ConfigError(f"topic {e.args[0]!r} does not exist") from None
