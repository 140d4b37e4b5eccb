"""The stage that reads repartition topics: a batch closes once every upstream task's
marker for it has arrived; records of an upstream run whose marker never came are dropped."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Hashable, Iterable
from itertools import repeat
from typing import Any

from confluent_kafka import Message

from kstream.clocks import TP, MarkerClock, MarkerPartitionClock
from kstream.codec import Codec, refused
from kstream.dead_letters import DeadLetter, operator_name
from kstream.errors import ConfigError, FormatError
from kstream.graph import Batch, Node
from kstream.kafka import exchange
from kstream.plan import Stage
from kstream.poison import Inputs, TaskBatch
from kstream.progress import Closings
from kstream.settings import Settings
from kstream.stages.base import StageRuntime
from kstream.stages.partition_task import Arrival, PartitionTask

log = logging.getLogger(__name__)
PROCESSED, LATE = Arrival.PROCESSED, Arrival.LATE


class ExchangePartitionTask(PartitionTask[MarkerPartitionClock]):
    """A repartition partition's task: also, per open batch, the upstream runs whose
    marker for it came (the others never finished: kstream/kafka/exchange.py)."""

    def __init__(self, tp: TP, clock: MarkerPartitionClock, handed: Closings | None = None):
        super().__init__(tp, clock, handed)
        self.finished: dict[int, set[int]] = {}  # batch -> writers whose marker came

    def marker(self, t: int, upstream: Iterable[Hashable], writer: int) -> None:
        """Upstream tasks `upstream` closed batch t in the run `writer`."""
        self.clock.marker(t, upstream)
        if not self.is_closed(t):
            self.finished.setdefault(t, set()).add(writer)

    def forget_closed(self) -> None:
        """Forget the markers of batches closed here that hold no records to take. A batch
        closed by the stage may still be open here, or closed with its records not yet
        taken (a partition catching up takes it in a run of its own): its markers say
        then which of its records to keep."""
        self.finished = {
            t: writers
            for t, writers in self.finished.items()
            if t in self.first or not self.is_closed(t)
        }


class ExchangeStage(StageRuntime):
    every_interval = False
    clock: MarkerClock
    tasks: dict[TP, ExchangePartitionTask]

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
        self.abandoned = 0  # records dropped: their run never finished (kstream/kafka/exchange.py)
        self.side_nodes = {(x.topic, i): n for x in stage.reads for i, n in enumerate(x.sides)}

    def new_task(self, tp: TP, handed: Closings | None) -> ExchangePartitionTask:
        return ExchangePartitionTask(tp, self.clock.partition(tp[0]), handed)

    def watermark(self, now_ms: int) -> int | None:
        return self.clock.watermark([task.clock for task in self.tasks.values()])

    def pending(self) -> list[int]:
        return self.clock.pending(self.open_times())

    def ingest(self, topic: str, msgs: list[Message], now_ms: int) -> None:
        """File each frame's records under their batch. A frame not in the topic's format
        (its header) is not read: the worker stops (FormatError). Frames of a partition
        the stage does not hold (revoked, fetched before) are its next owner's."""
        tasks = self.tasks
        codec = self.codecs[topic]
        expected = codec.headers
        for m in msgs:
            p, offset = m.partition(), m.offset()
            if m.headers() != expected:
                raise refused(m.headers(), codec, f"{topic}[{p}]@{offset}")
            t, side, payload, writer = _decode(m, codec)
            task = tasks.get((topic, p))
            if task is None:
                continue
            if side == exchange.MARKER:
                task.advance(offset + 1)
                upstream, sides = payload[0]
                task.marker(t, upstream, writer)
                self.clock.announce(t)
                self.emitted[t].update((topic, s) for s in sides)
                continue
            arrival = task.arrival(t, offset)
            task.advance(offset + 1)
            if arrival is PROCESSED:
                continue
            if arrival is LATE:
                placed = self._late(task, len(payload))
                if placed is None:
                    continue
                t, writer = placed, None  # late: kept, whether its run finished or not
            rows = zip(repeat(side), payload, repeat(offset), repeat(writer), strict=False)
            task.bucket(t, offset).extend(rows)  # (C-level: a frame holds thousands)

    def take(self, t: int, tps: tuple[TP, ...]) -> tuple[Inputs, list[ExchangeTask]]:
        """Batch t's records of partitions tps, a task per partition, and the side nodes'
        values for a task without records: [] for a side some upstream task wrote in this
        batch (markers say so), None (no result) for the others."""
        by_tp = self._take_open(t, tps)
        emitted = self.emitted.get(t, set())
        for tp in tps:
            task = self.tasks.get(tp)
            complete = set() if task is None else task.finished.pop(t, set())
            rows = by_tp.get(tp)
            if rows:
                by_tp[tp] = self._of_complete_runs(t, tp, rows, complete)
        done = self.closer.closed_through
        if done is not None and t <= done:
            self._forget_taken(done)
            for task in self.tasks.values():
                task.forget_closed()
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

    def _forget_taken(self, done: int) -> None:
        """Forget which sides upstream wrote in the batches through `done` (the stage's
        last closed one) that every partition has closed and taken. A partition catching a
        batch up in a run of its own after another's may have read some of its markers
        before that run: they are not read again. A revoked partition's task is gone, so
        it holds no batch here."""
        tasks = self.tasks.values()
        taken = [
            t
            for t in self.emitted
            if t <= done and all(task.is_closed(t) and t not in task.first for task in tasks)
        ]
        for t in taken:
            del self.emitted[t]

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
