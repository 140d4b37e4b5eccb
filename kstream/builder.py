"""The pipeline graph while it is being built: its nodes, their ids and the names of
stateful and shuffling operators (kstream/names.py).

DStream methods add nodes here; the plan (kstream/plan.py) and the local runner
(kstream/local.py) read them through `Pipeline`, what an App offers them, so neither
depends on the App itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from kstream.graph import Node, Operator, topological
from kstream.names import OperatorNames
from kstream.partitioning import Partitioning

if TYPE_CHECKING:
    from kstream.settings import Settings


class GraphBuilder:
    """Owns node ids and operator names; nodes are added, never removed."""

    def __init__(self, interval_ms: int) -> None:
        self.interval_ms = interval_ms  # the batch interval: a window's default slide
        self.nodes: list[Node] = []
        self.names = OperatorNames()
        self._ids = 0

    def new_id(self) -> int:
        """An id for a node about to be added (its parents may be added first)."""
        self._ids += 1
        return self._ids

    def add(
        self,
        op: Operator,
        parents: tuple[Node, ...],
        partitioning: Partitioning | None,
        node_id: int | None = None,
        label: str | None = None,
    ) -> Node:
        node = Node(node_id or self.new_id(), op, parents, partitioning, label=label)
        for p in parents:
            p.children.append(node)
        self.nodes.append(node)
        return node

    def ordered(self) -> list[Node]:
        return topological(self.nodes)

    def sources(self) -> list[Node]:
        return [n for n in self.nodes if n.op.is_source]


class Pipeline(Protocol):
    """What the plan and the local runner read of an app."""

    app_id: str
    interval_ms: int
    settings: Settings
    graph: GraphBuilder

    def uses_kafka(self) -> bool: ...
