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

Taking a failed batch apart. Batches run vectorised; when a stage's body (its operators
but the sinks) raises on a batch, each task (input partition) of the batch runs alone;
in a task that fails alone, the body runs on each of its records alone, and the records
that raise alone are the culprits. The task then runs without them; should it still
fail (only a combination of records fails), all of its records are poison, with that
error. The surviving records then run as one batch again. Stages after a shuffle are
taken apart the same way, element by element of their repartition input, unless they
keep state: a record cannot run alone there without changing the state, so a failing
task's whole batch is poison and its state changes are rolled back (see
`RocksStore.savepoint`), and the task runs its batch again without input. A sink that
raises makes the whole batch poison (which records it failed on is unknown). A stage
that fails even on an empty batch is not failing because of its records: the worker
stops, naming the operator.

User functions of a batch that is taken apart run more than once on some records.

Dead letters themselves (their headers, the topic) are kstream/dead_letters.py's.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable, Iterable
from typing import Any

from kstream.clocks import TP
from kstream.dead_letters import DeadLetter, failure
from kstream.errors import FormatError
from kstream.graph import Batch, Node, evaluate

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


def merge_inputs(template: Inputs, parts: Iterable[Inputs]) -> Inputs:
    """The template's values (None: no result, []: empty) extended by each part's, in
    order; the lists are new."""
    out = {n: (None if v is None else list(v)) for n, v in template.items()}
    for part in parts:
        for node, values in part.items():
            if values:
                held = out.get(node)
                if held is None:
                    out[node] = list(values)
                else:
                    held.extend(values)
    return out


def merge_values(results: Iterable[Inputs]) -> Inputs:
    """Per-task results of the same nodes as one: lists joined, None where all are None."""
    merged: Inputs = {}
    for values in results:
        for node, value in values.items():
            if value is not None:
                held = merged.get(node)
                merged[node] = [*held, *value] if held else list(value)
            else:
                merged.setdefault(node, None)
    return merged


def stuck(error: BaseException, t: int, what: str) -> PoisonRecordError:
    """The error that stops the worker when a stage fails even without records."""
    frames = traceback.extract_tb(error.__traceback__)
    at = f" at {frames[-1].filename}:{frames[-1].lineno}" if frames else ""
    return PoisonRecordError(
        f"{failure(error)}{at}, on {what} of batch {t}, even without any input record: not "
        "a poison record but a failing operator (or its state); stopping"
    )


class Poison:
    """A worker's on_error policy: takes failed batches apart, then dead-letters, skips
    or stops on their poison records; logs and counts them."""

    def __init__(
        self,
        app_id: str,
        policy: str,
        topic: str | None,
        metrics: Any,
        log_every: float = LOG_EVERY,
    ):
        self.app_id = app_id
        self.policy = policy
        self.topic = topic
        self.metrics = metrics
        self.log_every = log_every
        self._logged = -float("inf")
        self._quiet = 0  # lines left out since the last one

    # -- taking a batch apart ------------------------------------------------------------
    def isolate(self, body: list[Node], t: int, template: Inputs, tasks: list[TaskBatch]) -> Inputs:
        """Run a stateless stage's body over the tasks' records: at once, or, when that
        raises, taken apart (the module's doc). Poison records land in the tasks'
        `letters`."""
        try:
            return evaluate(body, t, merge_inputs(template, (task.inputs() for task in tasks)))
        except Exception as e:
            if not poisonous(e):
                raise
            if not tasks:
                raise stuck(e, t, "an empty batch") from e
        results = []
        for task in tasks:
            if len(tasks) > 1:
                try:
                    results.append(evaluate(body, t, merge_inputs(template, [task.inputs()])))
                    continue
                except Exception as e:
                    if not poisonous(e):
                        raise
            results.append(self._take_apart(body, t, template, task))
        if len(tasks) == 1:
            return results[0]
        try:  # the survivors as one batch, as it would have run without the culprits
            return evaluate(body, t, merge_inputs(template, (task.inputs() for task in tasks)))
        except Exception as e:
            if not poisonous(e):
                raise
            self.note(
                f"batch {t} fails only with the records of several partitions together "
                f"({failure(e)}); each partition's part of it runs on its own"
            )
            return merge_values(results)

    def _take_apart(self, body: list[Node], t: int, template: Inputs, task: TaskBatch) -> Inputs:
        culprits = []
        for i in task.alive():
            try:
                evaluate(body, t, merge_inputs(template, [task.unit(i)]))
            except Exception as e:
                if not poisonous(e):
                    raise
                culprits.append((i, e))
        for i, e in culprits:
            task.kill(i, e)
        try:
            return evaluate(body, t, merge_inputs(template, [task.inputs()]))
        except Exception as e:
            if not poisonous(e):
                raise
            n = task.kill_all(e)
            self.note(
                f"batch {t} of {task.where()} fails only with its records together "
                f"({failure(e)}): all {n} of them are poison (on_error={self.policy})"
            )
        try:
            return evaluate(body, t, merge_inputs(template, []))
        except Exception as e:
            if not poisonous(e):
                raise
            raise stuck(e, t, task.where()) from e

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
        now = time.monotonic()
        if now - self._logged < self.log_every:
            self._quiet += 1
            return
        more = f" ({self._quiet} more such lines left out)" if self._quiet else ""
        log.warning("%s%s", line, more)
        self._logged, self._quiet = now, 0

    def tick(self) -> None:
        """Report the lines left out, once the period is over."""
        if self._quiet and time.monotonic() - self._logged >= self.log_every:
            log.warning(
                "%d more poison record line(s) left out (on_error=%s; see "
                "kstream_errors_total and kstream_dlq_records_total)",
                self._quiet,
                self.policy,
            )
            self._logged, self._quiet = time.monotonic(), 0
