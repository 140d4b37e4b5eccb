"""The shuffle node: where records must meet their key's other records.

On Kafka it is a repartition topic between two stages (written upstream after `combine`,
read downstream); in a single process it only runs `combine`, so both paths compute alike.
"""

from __future__ import annotations

from collections.abc import Callable

from kstream.graph import Batch, Operator
from kstream.partitioning import GLOBAL


class Shuffle(Operator):
    kind = "shuffle"

    def __init__(
        self,
        target: str,
        side: int,
        combine: Callable[[Batch], Batch] | None,
        partitions: int | None,
        by: str,
        streams: bool = False,
    ):
        self.target = target  # name of the consuming node: names the repartition topic
        self.side = side  # which input of the consumer (0, or 1 for a join's right side)
        self.combine = combine
        self.streams = streams  # combine reads any iterable once (the op's partial_streams)
        self.partitions = 1 if by == GLOBAL else partitions
        self.by = by

    def apply(self, inputs, t):
        (x,) = inputs
        if x is None:
            return None
        return self.combine(x) if self.combine is not None else x

    def describe(self) -> str:
        return f"shuffle[{self.by}] -> {self.target} (side {self.side})"
