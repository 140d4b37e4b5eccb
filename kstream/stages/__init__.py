"""A stage at run time: it takes in its partitions' records and hands out closed batches.

SourceStage reads the app's source topics and closes batches by record timestamps (or the
wall clock once caught up); ExchangeStage reads repartition topics and closes a batch once
every upstream task's marker for it has arrived. Each partition a stage holds is a
PartitionTask (kstream/stages/partition_task.py): its reading, open batches and closings.

A partition that joins a running stage (after a rebalance or a restart) may hold records
of batches the stage has already closed: they are not late, they were never processed
here. It catches up in runs of its own, each batch with its own records, before it joins
the stage's regular batches; so a batch's result does not depend on who owned what when.
"""

from kstream.poison import PoisonRecordError
from kstream.stages.base import Run, StageRuntime
from kstream.stages.exchange import ExchangeStage, upstream_tasks
from kstream.stages.source import SourceStage

__all__ = [
    "ExchangeStage",
    "PoisonRecordError",
    "Run",
    "SourceStage",
    "StageRuntime",
    "upstream_tasks",
]
