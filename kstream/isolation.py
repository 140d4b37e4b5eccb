"""Failure isolation (docs/design.md §6): how a stage's batch is taken apart when it
raises, so that only its poison records are left out (what becomes of them is
kstream/poison.py's on_error policy).

Batches run vectorised; when a stage's body (its operators but the sinks) raises on a
batch, each task (input partition) of the batch runs alone; in a task that fails alone,
the body runs on each of its records alone, and the records that raise alone are the
culprits. The task then runs without them; should it still fail (only a combination of
records fails), all of its records are poison, with that error. The surviving records
then run as one batch again. Stages after a shuffle are taken apart the same way,
element by element of their repartition input, unless they keep state: a record cannot
run alone there without changing the state, so a failing task's whole batch is poison
and its state changes are rolled back (`BatchTransaction.savepoint`,
kstream/state/transaction.py), and the task runs its batch again without input. A sink
that raises makes the whole batch poison (which records it failed on is unknown). A
stage that fails even on an empty batch is not failing because of its records: the
worker stops, naming the operator.

User functions of a batch that is taken apart run more than once on some records.

Each kind of stage has its strategy, chosen once per stage from the plan
(`stage_strategy`): `StatelessBody` or `StatefulBody` for the body, within `WithSinks`.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from kstream.clocks import TP
from kstream.dead_letters import failure
from kstream.graph import Node, evaluate
from kstream.ops.stateful import BatchContext, Stateful
from kstream.plan import Stage
from kstream.poison import Inputs, Poison, PoisonRecordError, TaskBatch, poisonous

if TYPE_CHECKING:
    from kstream.state.tasks import TaskStores


def attempt(
    nodes: list[Node], t: int, inputs: Inputs, contexts: Mapping[Node, Any] | None = None
) -> Inputs | Exception:
    """The nodes' values over `inputs`, or the error they raised when it may be a
    record's fault (`poisonous`); any other error goes up, as it would stop the worker
    whatever the records."""
    try:
        return evaluate(nodes, t, inputs, contexts)
    except Exception as e:
        if not poisonous(e):
            raise
        return e


def stuck(error: BaseException, t: int, what: str) -> PoisonRecordError:
    """The error that stops the worker when a stage fails even without records."""
    frames = traceback.extract_tb(error.__traceback__)
    at = f" at {frames[-1].filename}:{frames[-1].lineno}" if frames else ""
    return PoisonRecordError(
        f"{failure(error)}{at}, on {what} of batch {t}, even without any input record: not "
        "a poison record but a failing operator (or its state); stopping"
    )


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


class StageStrategy(Protocol):
    def run(self, t: int, template: Inputs, tasks: list[TaskBatch]) -> Inputs:
        """Batch t over the tasks' records; their poison records land in their `letters`."""
        ...


class StatelessBody:
    """A body without state: at once, or, when that raises, task by task, then record by
    record (the module's doc)."""

    def __init__(self, body: list[Node], poison: Poison):
        self.body = body
        self.poison = poison

    def run(self, t: int, template: Inputs, tasks: list[TaskBatch]) -> Inputs:
        everyone = attempt(self.body, t, merge_inputs(template, (x.inputs() for x in tasks)))
        if not isinstance(everyone, Exception):
            return everyone
        if not tasks:
            raise stuck(everyone, t, "an empty batch") from everyone
        if len(tasks) == 1:
            return self._take_apart(t, template, tasks[0])
        results = [self._alone(t, template, task) for task in tasks]
        # the survivors as one batch, as it would have run without the culprits
        survivors = attempt(self.body, t, merge_inputs(template, (x.inputs() for x in tasks)))
        if not isinstance(survivors, Exception):
            return survivors
        self.poison.note(
            f"batch {t} fails only with the records of several partitions together "
            f"({failure(survivors)}); each partition's part of it runs on its own"
        )
        return merge_values(results)

    def _alone(self, t: int, template: Inputs, task: TaskBatch) -> Inputs:
        values = attempt(self.body, t, merge_inputs(template, [task.inputs()]))
        if not isinstance(values, Exception):
            return values
        return self._take_apart(t, template, task)

    def _take_apart(self, t: int, template: Inputs, task: TaskBatch) -> Inputs:
        culprits = []
        for i in task.alive():
            outcome = attempt(self.body, t, merge_inputs(template, [task.unit(i)]))
            if isinstance(outcome, Exception):
                culprits.append((i, outcome))
        for i, e in culprits:
            task.kill(i, e)
        values = attempt(self.body, t, merge_inputs(template, [task.inputs()]))
        if not isinstance(values, Exception):
            return values
        n = task.kill_all(values)
        self.poison.note(
            f"batch {t} of {task.where()} fails only with its records together "
            f"({failure(values)}): all {n} of them are poison (on_error={self.poison.policy})"
        )
        empty = attempt(self.body, t, merge_inputs(template, []))
        if isinstance(empty, Exception):
            raise stuck(empty, t, task.where()) from empty
        return empty


class StatefulBody:
    """A body that keeps state: task by task, each over its own stores (given to its
    operators in a `BatchContext`). A record cannot run alone there without changing the
    state: a task that raises is rolled back, all of its batch is poison, and it runs
    again without input."""

    def __init__(
        self,
        body: list[Node],
        poison: Poison,
        stores: TaskStores,
        position: Callable[[TP], int],
    ):
        self.body = body
        self.poison = poison
        self.stores = stores
        self.position = position  # how far a task's input has been read
        self.stateful = [n for n in body if isinstance(n.op, Stateful)]

    def run(self, t: int, template: Inputs, tasks: list[TaskBatch]) -> Inputs:
        return merge_values([self._run_task(t, template, task) for task in tasks])

    def _run_task(self, t: int, template: Inputs, task: TaskBatch) -> Inputs:
        topic, p = task.tp
        stores = self.stores.for_batch(topic, p, t, self.position(task.tp))
        task.stores = list(stores.values())
        for store in task.stores:
            store.savepoint()
        contexts = self._contexts(task, stores)
        fed_elsewhere: Inputs = {n: None for n in self.stateful if n not in stores}
        inputs = {**merge_inputs(template, [task.inputs()]), **fed_elsewhere}
        values = attempt(self.body, t, inputs, contexts)
        if isinstance(values, Exception):
            for store in task.stores:
                store.rollback()
            k = task.kill_all(values)
            self.poison.note(
                f"batch {t} of {task.where()} failed in a stage that keeps state "
                f"({failure(values)}): its state changes are undone and all {k} of its "
                f"records are poison (on_error={self.poison.policy})"
            )
            contexts = self._contexts(task, stores)  # its late records are undone too
            values = self._without_input(t, template, task, fed_elsewhere, contexts)
        for node, context in contexts.items():
            task.letters.extend(task.late(node, r, why) for r, why in context.late or ())
        return values

    def _contexts(self, task: TaskBatch, stores: dict[Node, Any]) -> dict[Node, BatchContext]:
        """Each operator's context in the task: its store, the task's keys, a list for
        the records it turns away as late (dead letters)."""
        if not stores:
            return {}
        owns = self.stores.owns(*task.tp)
        return {n: BatchContext(store, owns, []) for n, store in stores.items()}

    def _without_input(
        self,
        t: int,
        template: Inputs,
        task: TaskBatch,
        fed_elsewhere: Inputs,
        contexts: dict[Node, BatchContext],
    ) -> Inputs:
        values = attempt(self.body, t, {**merge_inputs(template, []), **fed_elsewhere}, contexts)
        if isinstance(values, Exception):
            for store in task.stores:
                store.rollback()
            raise stuck(values, t, task.where()) from values
        return values


class WithSinks:
    """A body's strategy, then the stage's sinks. Which records a sink failed on is
    unknown: all of the batch is poison, its state changes are undone, and it runs again
    without them."""

    def __init__(self, body: StageStrategy, sinks: list[Node], poison: Poison):
        self.body = body
        self.sinks = sinks
        self.poison = poison

    def run(self, t: int, template: Inputs, tasks: list[TaskBatch]) -> Inputs:
        values = self.body.run(t, template, tasks)
        written = attempt(self.sinks, t, values)
        if not isinstance(written, Exception):
            return {**values, **written}
        n = 0
        for task in tasks:
            for store in task.stores:
                store.rollback()
            task.letters = [x for x in task.letters if x.reason != "late"]
            n += task.kill_all(written)
        self.poison.note(
            f"batch {t} failed in a sink ({failure(written)}): all {n} records of the batch "
            f"are poison (on_error={self.poison.policy})"
        )
        values = self.body.run(t, template, tasks)
        again = attempt(self.sinks, t, values)
        if isinstance(again, Exception):
            raise stuck(again, t, "the sinks") from again
        return {**values, **again}


def stage_strategy(
    stage: Stage,
    poison: Poison,
    stores: TaskStores | None,
    position: Callable[[TP], int],
) -> StageStrategy:
    """The stage's strategy: its body's kind (does it keep state?) within its sinks'."""
    body = [n for n in stage.nodes if not n.op.is_sink]
    sinks = [n for n in stage.nodes if n.op.is_sink]
    if any(isinstance(n.op, Stateful) for n in body):
        assert stores is not None, "a stage that keeps state runs over stores"
        return WithSinks(StatefulBody(body, poison, stores, position), sinks, poison)
    return WithSinks(StatelessBody(body, poison), sinks, poison)
