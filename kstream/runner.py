"""Running one batch of a stage: the pipeline's nodes over its records, no Kafka client.

Each stage runs under the strategy its kind calls for (kstream/isolation.py: taken apart
when it raises; task by task over its stores when it keeps state; the sinks last),
chosen the first time the stage runs. What comes out (`BatchResult`) is what the
checkpoint writes (kstream/checkpoint.py, docs/design.md §5).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kstream.clocks import TP
from kstream.dead_letters import DeadLetter
from kstream.graph import Batch, Node
from kstream.isolation import StageStrategy, stage_strategy
from kstream.poison import Poison
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

    def __init__(self, poison: Poison, stores: TaskStores | None):
        self.poison = poison
        self.stores = stores
        self._strategies: dict[StageRuntime, StageStrategy] = {}

    def run(self, stage: StageRuntime, t: int, tps: tuple[TP, ...]) -> BatchResult:
        """Batch t of the stage over partitions tps (taken out of its open batches)."""
        template, tasks = stage.take(t, tps)
        values = self.strategy(stage).run(t, template, tasks)
        return BatchResult(
            values,
            sum(task.records for task in tasks),
            [x for task in tasks for x in task.letters],
            [store for task in tasks for store in task.stores],
        )

    def strategy(self, stage: StageRuntime) -> StageStrategy:
        """The stage's strategy, chosen once from its plan."""
        chosen = self._strategies.get(stage)
        if chosen is None:
            chosen = self._strategies[stage] = stage_strategy(
                stage.stage,
                self.poison,
                self.stores,
                stage.position,
            )
        return chosen
