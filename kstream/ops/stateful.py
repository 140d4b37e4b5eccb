"""Base of operators that keep state across batches (state by key, windows).

Whoever runs a batch hands each such operator a `BatchContext`: on Kafka, the store of
the task (partition) being run (kstream/isolation.py); locally, one in-memory store
(kstream/local.py). Stateful operators read a stream that a BY_KEY shuffle spread: their
own, or that of the keyed operator before them in the stage (kstream/plan.py,
`Exchange.stateful`), so each task holds exactly the keys of its partition.

Rules for the operators: every piece of state that outlives a batch is in the context's
store (never in Python attributes: the next batch may be another task's),
keys and values are of types the internal format carries (kstream/codec.py: a list
rather than a tuple where either will do, as msgpack writes it without an extension
type), and a store holds only the keys of one partition. An input of None (the stream
has no result in this batch) leaves the store untouched and gives None.

Store layout shared by the operators: `("k", key)` holds a user key's entry, other tuples
and plain strings hold the operator's own bookkeeping, so they never collide.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass
from typing import Any

from kstream.graph import Batch, Operator
from kstream.state.store import Store

KEY = "k"
META = "meta"


def owns_all(key: Any) -> bool:
    """The key ownership of a single store: every key is its own."""
    return True


@dataclass(eq=False)
class BatchContext:
    """What an operator that keeps state works with in one task's batch, handed to it by
    the runner instead of set on it, so that nothing of one task's batch stays behind
    on the operator for the next."""

    store: Store
    # which keys of initial state belong to this store's partition (kstream/partitioning.py)
    owns: Callable[[Any], bool] = owns_all
    # records turned away as late, (record, why), for the dead-letter topic; None where
    # there is none to send them to (a local run): they are dropped
    late: list[tuple[Any, str]] | None = None


class Stateful(Operator):
    def apply(self, inputs: list[Batch | None], t: int) -> Batch | None:
        raise TypeError(f"{self.kind} keeps state: it runs with a BatchContext (apply_in)")

    def apply_in(self, context: BatchContext, inputs: list[Batch | None], t: int) -> Batch | None:
        raise NotImplementedError


def keyed_items(store: Store) -> Iterator[tuple[Hashable, Any]]:
    """Every (user key, entry) of a store."""
    for sk, value in store.items():
        if type(sk) is tuple and len(sk) == 2 and sk[0] == KEY:
            yield sk[1], value


def ms(t: int) -> float:
    """Engine time (ms) as the float seconds users see."""
    return t / 1000
