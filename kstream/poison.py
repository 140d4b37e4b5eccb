"""Poison records (docs/design.md §6): records that cannot be deserialized, on which a user
function raises, or outputs Kafka refuses for good (too large, invalid, a topic the worker
may not write or that is gone: reason `produce`). The setting `on_error` says what becomes
of one:

- "dlq" (default): it goes to the dead-letter topic `<app_id>-dlq` with its original key,
  value, timestamp and headers, plus `kstream.error.*` headers (kstream/dead_letters.py),
  in the same step (and, under exactly-once, the same transaction) as the batch's outputs;
- "skip": it is logged (at most a line every 10 s, with a count) and left out;
- "fail": the worker stops with one line naming the record and the error.
Either way the rest of the batch goes on, and each one counts in
`kstream_errors_total{kind="deserialize"|"function"|"produce"}`; dead letters also count in
`kstream_dlq_records_total{topic,reason}`.

How a failing batch is taken apart to find them is kstream/isolation.py's.

Dead letters themselves (their headers, the topic) are kstream/dead_letters.py's.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from kstream.clocks import TP
from kstream.dead_letters import DeadLetter
from kstream.errors import FormatError
from kstream.graph import Batch, Node

log = logging.getLogger(__name__)

POLICIES = ("dlq", "skip", "fail")
LOG_EVERY = 10.0  # seconds between two log lines about poison records

Inputs = dict[Node, Batch | None]


class PoisonRecordError(RuntimeError):
    """A record failed and the on_error policy is "fail", or a stage fails even without
    records: the worker stops."""


def poisonous(e: BaseException) -> bool:
    """Whether an exception may be a record's fault (not the process running out of
    memory, nor an operator keeping values its internal format does not carry)."""
    return isinstance(e, Exception) and not isinstance(
        e, MemoryError | PoisonRecordError | FormatError
    )


class TaskBatch:
    """One task's (input partition's) records of a batch, in units that can run alone,
    with what it takes to dead-letter each (subclasses in kstream/stages/)."""

    def __init__(self, tp: TP, t: int):
        self.tp = tp
        self.t = t
        self.records = 0  # records taken in (the batch-size metric)
        self.size = 0  # units that can run alone
        self.dead: set[int] = set()
        self.letters: list[DeadLetter] = []  # its poison records so far
        self.stores: list[Any] = []  # the state stores it ran over (rolled back on failure)

    def inputs(self) -> Inputs:
        """The input nodes' values: every unit not found poison."""
        raise NotImplementedError

    def unit(self, i: int) -> Inputs:
        """The input nodes' values holding unit i alone."""
        raise NotImplementedError

    def letter(self, i: int, reason: str, error: BaseException, operator: str | None) -> DeadLetter:
        raise NotImplementedError

    def late(self, node: Node, record: Any, why: str) -> DeadLetter:
        """The dead letter of a record that `node`, a `late="dlq"` operator, turned away."""
        raise NotImplementedError

    def alive(self) -> list[int]:
        return [i for i in range(self.size) if i not in self.dead]

    def kill(self, i: int, error: BaseException, operator: str | None = None) -> None:
        self.dead.add(i)
        self.letters.append(self.letter(i, "function", error, operator))

    def kill_all(self, error: BaseException, operator: str | None = None) -> int:
        alive = self.alive()
        for i in alive:
            self.kill(i, error, operator)
        return len(alive)

    def where(self) -> str:
        return f"{self.tp[0]}[{self.tp[1]}]"


class Poison:
    """A worker's on_error policy: dead-letters, skips or stops on poison records; logs
    and counts them."""

    def __init__(
        self,
        app_id: str,
        policy: str,
        topic: str | None,
        metrics: Any,
        log_every: float = LOG_EVERY,
        clock: Callable[[], float] = time.monotonic,
    ):
        """`clock` (seconds) paces the log lines: tests pass one they move on by hand."""
        self.app_id = app_id
        self.policy = policy
        self.topic = topic
        self.metrics = metrics
        self.log_every = log_every
        self.clock = clock
        self._logged = -float("inf")
        self._quiet = 0  # lines left out since the last one

    # -- what becomes of poison records -----------------------------------------------------
    def handle(self, letters: list[DeadLetter], send: Callable[[str, DeadLetter], None]) -> None:
        """Apply the policy: `send(topic, letter)` produces a dead letter. Late records of
        a `late="dlq"` operator go to the dead-letter topic whatever the policy."""
        poison = [x for x in letters if x.reason != "late"]
        for x in poison:
            self.metrics.error(x.reason)
        if poison and self.policy == "fail":
            first = poison[0]
            more = f" (and {len(poison) - 1} more)" if len(poison) > 1 else ""
            raise PoisonRecordError(
                f"poison record {first.where()} in batch {first.batch}: {first.describe()}"
                f"{more}; on_error=fail stops the worker (dlq or skip would go on)"
            )
        for x in letters:
            if self.policy == "dlq" or x.reason == "late":
                assert self.topic is not None
                send(self.topic, x)
                self.metrics.dlq(x.topic, x.reason)
                self._report(f"dead-lettered {x.where()} to {self.topic}: {x.describe()}")
            else:
                self._report(f"skipping record {x.where()}: {x.describe()}")

    def note(self, line: str) -> None:
        self._report(line)

    def _report(self, line: str) -> None:
        now = self.clock()
        if now - self._logged < self.log_every:
            self._quiet += 1
            return
        more = f" ({self._quiet} more such lines left out)" if self._quiet else ""
        log.warning("%s%s", line, more)
        self._logged, self._quiet = now, 0

    def tick(self) -> None:
        """Report the lines left out, once the period is over."""
        if self._quiet and self.clock() - self._logged >= self.log_every:
            log.warning(
                "%d more poison record line(s) left out (on_error=%s; see "
                "kstream_errors_total and kstream_dlq_records_total)",
                self._quiet,
                self.policy,
            )
            self._logged, self._quiet = self.clock(), 0
