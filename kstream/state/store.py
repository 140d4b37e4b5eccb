"""The interface stateful operators use, and its in-memory implementation."""

from __future__ import annotations

import pickle
from abc import ABC, abstractmethod
from collections.abc import Hashable, Iterable, Iterator
from typing import Any

_dumps, _loads = pickle.dumps, pickle.loads


class Store(ABC):
    """Key-value state of one operator in one task. Keys and values must be picklable.

    Reads see the writes made earlier in the same batch; a Kafka-backed store makes a
    batch's writes durable together, after the batch's outputs are acknowledged.
    """

    @abstractmethod
    def get(self, key: Hashable, default: Any = None) -> Any: ...

    @abstractmethod
    def put(self, key: Hashable, value: Any) -> None: ...

    @abstractmethod
    def delete(self, key: Hashable) -> None: ...

    @abstractmethod
    def items(self) -> Iterator[tuple[Hashable, Any]]:
        """Every (key, value), in no particular order; safe to write to while iterating
        over a list() of it."""

    @abstractmethod
    def __len__(self) -> int: ...

    def get_many(self, keys: Iterable[Hashable]) -> list[Any]:
        """Values of many keys at once (None where absent): one call for a whole batch."""
        return [self.get(k) for k in keys]

    def __contains__(self, key: Hashable) -> bool:
        return self.get(key, _MISSING) is not _MISSING


_MISSING = object()


class MemoryStore(Store):
    """A dict of pickled values: like a RocksDB store, a value read in one batch is never
    the object stored (or emitted) in an earlier one, and an unpicklable value fails here,
    in a local test, rather than on Kafka."""

    def __init__(self) -> None:
        self.data: dict[Hashable, bytes] = {}

    def get(self, key, default=None):
        raw = self.data.get(key)
        return default if raw is None else _loads(raw)

    def put(self, key, value):
        self.data[key] = _dumps(value, 5)

    def delete(self, key):
        self.data.pop(key, None)

    def items(self):
        return iter([(k, _loads(v)) for k, v in self.data.items()])

    def __len__(self):
        return len(self.data)

    def get_many(self, keys):
        get = self.data.get
        return [None if (raw := get(k)) is None else _loads(raw) for k in keys]
