"""Base of operators that keep state across batches (state by key, windows).

The runner binds a `Store` before each batch: on Kafka, the store of the task (partition)
being run; locally, one in-memory store. Stateful operators always read through a shuffle,
so each task holds exactly the keys of its partition.

Rules for the operators: every piece of state that outlives a batch is in `self.store`
(never in Python attributes: the store may be re-bound to another task's between batches),
keys and values are of types the internal format carries (kstream/codec.py: a list
rather than a tuple where either will do, as msgpack writes it without an extension
type), and a store holds only the keys of one partition. An input of None (the stream
has no result in this batch) leaves the store untouched and gives None.

Store layout shared by the operators: `("k", key)` holds a user key's entry, other tuples
and plain strings hold the operator's own bookkeeping, so they never collide.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator
from typing import Any

from kstream.graph import Operator
from kstream.state.store import Store

KEY = "k"
META = "meta"


def _owns_all(key: Any) -> bool:
    return True


class Stateful(Operator):
    store: Store
    pre_combined = True  # fed through a shuffle, which ran `partial` if the op has one
    owns: Callable[[Any], bool] = staticmethod(_owns_all)

    def bind(self, store: Store, owns: Callable[[Any], bool] | None = None) -> None:
        """Use `store` from the next batch on. `owns(key)` says which keys of initial state
        belong to this store's partition (default: all, for a single store)."""
        self.store = store
        self.owns = owns or _owns_all

    def keyed_items(self) -> Iterator[tuple[Hashable, Any]]:
        """Every (user key, entry) of the bound store."""
        for sk, value in self.store.items():
            if type(sk) is tuple and len(sk) == 2 and sk[0] == KEY:
                yield sk[1], value


def ms(t: int) -> float:
    """Engine time (ms) as the float seconds users see."""
    return t / 1000
