"""The pipeline graph: nodes wrap operators; DStream methods add them lazily.

Times inside the engine are integer milliseconds (batch time = end of its interval), so
batch arithmetic never suffers float rounding; user-facing times are float seconds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from kstream.errors import ConfigError
from kstream.partitioning import Partitioning

Batch = list[Any]


class Operator:
    """One per-batch operation. `apply` gets one input batch per parent.

    An input or output of None means "this stream produced no result in this batch"
    (a window between its slides), which is not the same as an empty batch.
    """

    kind = "op"
    is_source = False
    is_sink = False
    # apply() takes its one input as any iterable and reads it once, so a parent with a
    # `lazy` form may hand it an iterator instead of a list (see `evaluate`)
    streams = False
    partial_streams = False  # the same for `partial`, the map-side combine of some ops
    # the internal format of what it reads through a shuffle and keeps in state
    # (kstream/codec.py); None: the app's internal_serde
    serde: str | None = None

    def apply(self, inputs: list[Batch | None], t: int) -> Batch | None:
        raise NotImplementedError

    def apply_in(self, context: Any, inputs: list[Batch | None], t: int) -> Batch | None:
        """`apply` given the batch's context: what an operator that keeps state works
        with in one task (kstream/ops/stateful.py); the others need none."""
        return self.apply(inputs, t)

    # a record-at-a-time op's lazy form: its input (any iterable) -> its output, lazily
    lazy: Callable[[Iterable[Any]], Iterator[Any]] | None = None

    def describe(self) -> str:
        return self.kind


@dataclass(eq=False)
class Node:
    id: int
    op: Operator
    parents: tuple[Node, ...] = ()
    # how its records are spread over tasks by key, if they are (kstream/partitioning.py)
    partitioning: Partitioning | None = None
    children: list[Node] = field(default_factory=list)
    # stateful and shuffling operators: a name that survives edits (kstream/names.py)
    label: str | None = None

    @property
    def name(self) -> str:
        return self.label or f"{self.op.kind}-{self.id}"

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


def require_output(nodes: Iterable[Node]) -> None:
    """Spark's rule: a pipeline none of whose streams reaches an output has nothing to do
    (a forgotten `to()` would otherwise run silently and write nothing)."""
    if not any(n.op.is_sink for n in nodes):
        raise ConfigError(
            "No output operations registered, so nothing to execute: end a stream with "
            "to(), pprint(), collect() or foreach_batch()"
        )


def evaluate(
    nodes: list[Node],
    t: int,
    preset: dict[Node, Batch | None],
    contexts: Mapping[Node, Any] | None = None,
) -> dict[Node, Batch | None]:
    """Run one batch through `nodes` (topologically ordered); preset values are inputs,
    `contexts` the batch contexts of the nodes that keep state (`Operator.apply_in`).

    A chain of record-at-a-time operators runs as one pass of iterators (no list, and no
    garbage, between its steps) wherever each step's only reader streams; those nodes are
    left out of the result. An exception raised by an operator leaves with the node
    attached (`failed_node`), so that a poison record can be reported with the operator
    it failed in; one raised through a chain is traced to its step by running the chain
    again step by step."""
    values = dict(preset)
    contexts = contexts or {}
    members = set(nodes)
    lazy: dict[Node, Node] = {}  # node whose value is an iterator -> its parent
    for n in nodes:
        if n in values:
            continue
        inputs = [values[p] for p in n.parents]
        try:
            if inputs and inputs[0] is not None and _defers(n, members):
                values[n] = n.op.lazy(inputs[0])
                lazy[n] = n.parents[0]
            else:
                values[n] = _run(n, inputs, t, contexts)
        except Exception as e:
            if not any(p in lazy for p in n.parents):
                _blame(e, n)
                raise
            # the error may come from a step of the chain: run it again a step at a time
            eager = [_eager(p, lazy, values, t) for p in n.parents]
            values[n] = _apply(n, eager, t, contexts)
    for n in lazy:
        del values[n]
    return values


def _defers(n: Node, members: set[Node]) -> bool:
    """Whether n's value can be an iterator: its op has a lazy form and its only reader
    is evaluated now and reads its one input once."""
    if n.op.lazy is None or len(n.children) != 1:
        return False
    child = n.children[0]
    return child in members and child.op.streams and len(child.parents) == 1


def _eager(n: Node, lazy: dict[Node, Node], values: dict[Node, Any], t: int) -> Any:
    """n's value as a list, its lazy ancestors' values computed (and blamed) first."""
    if n not in lazy:
        return values[n]
    return _apply(n, [_eager(lazy[n], lazy, values, t)], t, {})


def _run(n: Node, inputs: list[Any], t: int, contexts: Mapping[Node, Any]) -> Any:
    context = contexts.get(n)
    return n.op.apply(inputs, t) if context is None else n.op.apply_in(context, inputs, t)


def _apply(n: Node, inputs: list[Any], t: int, contexts: Mapping[Node, Any]) -> Any:
    try:
        return _run(n, inputs, t, contexts)
    except Exception as e:
        _blame(e, n)
        raise


def _blame(e: Exception, n: Node) -> None:
    if getattr(e, "kstream_node", None) is None:
        e.kstream_node = n  # type: ignore[attr-defined]


def failed_node(error: BaseException) -> Node | None:
    """The node whose operator raised `error` inside `evaluate` (None if not known)."""
    return getattr(error, "kstream_node", None)
