"""Base of operators that keep state across batches (state by key, windows).

The runner binds a `Store` before each batch: on Kafka, the store of the task (partition)
being run; locally, one in-memory store. Stateful operators always read through a shuffle,
so each task holds exactly the keys of its partition.
"""

from __future__ import annotations

from kstream.graph import Operator
from kstream.state.store import Store


class Stateful(Operator):
    store: Store
    pre_combined = True  # fed through a shuffle, which ran `partial` if the op has one

    def bind(self, store: Store) -> None:
        self.store = store
