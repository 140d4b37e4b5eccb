"""The pipeline graph: nodes wrap operators; DStream methods add them lazily.

Times inside the engine are integer milliseconds (batch time = end of its interval), so
batch arithmetic never suffers float rounding; user-facing times are float seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Batch = list[Any]


class Operator:
    """One per-batch operation. `apply` gets one input batch per parent.

    An input or output of None means "this stream produced no result in this batch"
    (a window between its slides), which is not the same as an empty batch.
    """

    kind = "op"
    is_source = False
    is_sink = False

    def apply(self, inputs: list[Batch | None], t: int) -> Batch | None:
        raise NotImplementedError

    def describe(self) -> str:
        return self.kind


@dataclass(eq=False)
class Node:
    id: int
    op: Operator
    parents: tuple[Node, ...] = ()
    key_partitioned: bool = False
    children: list[Node] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"{self.op.kind}-{self.id}"

    def __repr__(self) -> str:
        return f"Node({self.name})"


def topological(nodes: list[Node]) -> list[Node]:
    """Nodes ordered so that every parent precedes its children (stable by id)."""
    order: list[Node] = []
    seen: set[int] = set()

    def visit(n: Node) -> None:
        if n.id in seen:
            return
        for p in n.parents:
            visit(p)
        seen.add(n.id)
        order.append(n)

    for n in sorted(nodes, key=lambda n: n.id):
        visit(n)
    return order


def evaluate(
    nodes: list[Node], t: int, preset: dict[Node, Batch | None]
) -> dict[Node, Batch | None]:
    """Run one batch through `nodes` (topologically ordered); preset values are inputs.

    An exception raised by an operator leaves with the node attached (`failed_node`), so
    that a poison record can be reported with the operator it failed in."""
    values = dict(preset)
    for n in nodes:
        if n in values:
            continue
        try:
            values[n] = n.op.apply([values[p] for p in n.parents], t)
        except Exception as e:
            if getattr(e, "kstream_node", None) is None:
                e.kstream_node = n  # type: ignore[attr-defined]
            raise
    return values


def failed_node(error: BaseException) -> Node | None:
    """The node whose operator raised `error` inside `evaluate` (None if not known)."""
    return getattr(error, "kstream_node", None)
