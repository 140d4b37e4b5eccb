"""Running one batch of a stage: the pipeline's nodes over its records, no Kafka client.

A stateless stage runs its batch in one go, taken apart when it raises (kstream/poison.py);
a stage whose operators keep state runs task by task, each over its own stores, rolled
back when it raises. The sinks run last. What comes out (`BatchResult`) is what the
checkpoint writes (kstream/checkpoint.py, docs/design.md §5).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from kstream.clocks import TP
from kstream.dead_letters import DeadLetter, failure
from kstream.graph import Batch, Node, evaluate
from kstream.ops.stateful import Stateful
from kstream.poison import Inputs, Poison, TaskBatch, merge_inputs, merge_values, poisonous, stuck
from kstream.stages import StageRuntime
from kstream.state.rocks import RocksStore
from kstream.state.tasks import TaskStores


@dataclass
class BatchResult:
    """A batch's values per node (the sinks' are its outputs), how many input records it
    had, its poison and late records, and the stores its state changes are pending in."""

    values: dict[Node, Batch | None]
    count: int
    letters: list[DeadLetter]
    stores: list[RocksStore] = field(default_factory=list)


class BatchRunner:
    """Evaluates batches under the app's on_error policy (`poison`), over `stores`."""

    def __init__(self, poison: Poison, stores: TaskStores):
        self.poison = poison
        self.stores = stores

    def run(self, stage: StageRuntime, t: int, tps: tuple[TP, ...]) -> BatchResult:
        """Batch t of the stage over partitions tps (taken out of its open batches)."""
        nodes = stage.stage.nodes
        body = [n for n in nodes if not n.op.is_sink]
        sinks = [n for n in nodes if n.op.is_sink]
        template, tasks = stage.take(t, tps)
        count = sum(task.records for task in tasks)
        touched: list[RocksStore] = []
        if any(isinstance(n.op, Stateful) for n in nodes):
            run = lambda: self._run_stateful(stage, body, t, template, tasks, touched)  # noqa: E731
        else:
            run = lambda: self.poison.isolate(body, t, template, tasks)  # noqa: E731
        values = self._with_sinks(run, sinks, t, tasks)
        letters = [x for task in tasks for x in task.letters]
        return BatchResult(values, count, letters, touched)

    def _with_sinks(
        self, run: Callable[[], Inputs], sinks: list[Node], t: int, tasks: list[TaskBatch]
    ) -> Inputs:
        """The body's values and the sinks'. Which records a sink failed on is unknown:
        all of the batch is poison, its state changes are undone, and it runs again
        without them."""
        values = run()
        try:
            return {**values, **evaluate(sinks, t, values)}
        except Exception as e:
            if not poisonous(e):
                raise
            n = 0
            for task in tasks:
                for store in task.stores:
                    store.rollback()
                task.letters = [x for x in task.letters if x.reason != "late"]
                n += task.kill_all(e)
            self.poison.note(
                f"batch {t} failed in a sink ({failure(e)}): all {n} records of the batch "
                f"are poison (on_error={self.poison.policy})"
            )
        values = run()
        try:
            return {**values, **evaluate(sinks, t, values)}
        except Exception as again:
            if not poisonous(again):
                raise
            raise stuck(again, t, "the sinks") from again

    def _run_stateful(
        self,
        stage: StageRuntime,
        body: list[Node],
        t: int,
        template: Inputs,
        tasks: list[TaskBatch],
        touched: list[RocksStore],
    ) -> Inputs:
        """The body of a stage that keeps state, task by task over the task's stores."""
        stateful = [n for n in body if isinstance(n.op, Stateful)]
        results = []
        for task in tasks:
            topic, p = task.tp
            position = stage.position((topic, p))
            task.stores = self.stores.bind(topic, p, t, position)
            touched.extend(task.stores)
            for store in task.stores:
                store.savepoint()
            fed = self.stores.nodes.get(topic, ())
            fed_elsewhere = {n: None for n in stateful if n not in fed}
            values = self._run_task(body, stateful, t, template, task, fed_elsewhere)
            for n in stateful:
                rejected = getattr(n.op, "rejected", None)
                if rejected:
                    task.letters.extend(task.late(n, record, why) for record, why in rejected)
                    rejected.clear()
            results.append(values)
        return merge_values(results)

    def _run_task(
        self,
        body: list[Node],
        stateful: list[Node],
        t: int,
        template: Inputs,
        task: TaskBatch,
        fed_elsewhere: Inputs,
    ) -> Inputs:
        """One task. A record cannot run alone there without changing the state: a task
        that raises is rolled back, all of its batch is poison, and it runs again without
        input."""
        try:
            inputs = merge_inputs(template, [task.inputs()])
            return evaluate(body, t, {**inputs, **fed_elsewhere})
        except Exception as e:
            if not poisonous(e):
                raise
            for store in task.stores:
                store.rollback()
            for n in stateful:
                if getattr(n.op, "rejected", None):
                    n.op.rejected.clear()  # type: ignore[attr-defined]
            k = task.kill_all(e)
            self.poison.note(
                f"batch {t} of {task.where()} failed in a stage that keeps state "
                f"({failure(e)}): its state changes are undone and all {k} of its "
                f"records are poison (on_error={self.poison.policy})"
            )
        try:  # as if it had no input
            return evaluate(body, t, {**merge_inputs(template, []), **fed_elsewhere})
        except Exception as again:
            if not poisonous(again):
                raise
            for store in task.stores:
                store.rollback()
            raise stuck(again, t, task.where()) from again
