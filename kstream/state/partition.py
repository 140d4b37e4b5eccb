"""A store's backend for one task (partition): bytes in, bytes out, no notion of a batch.

What a batch changes, its savepoints and its changelog records are the transaction's
(kstream/state/transaction.py), the same over every backend; a backend only looks keys up,
lists the operator's keys and applies many writes at once (quix-streams' layering of its
transactions over store partitions). RocksDB on Kafka (kstream/state/rocks.py), a dict
locally (kstream/state/memory.py).

Every key starts with its namespace byte, in every backend and in the changelog alike:
USER and the key's encoding for the operator's keys, META and a name for the store's own,
so no encoding of a key can collide with them; in RocksDB the operator's keys, after the
metadata, are read with one seek.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable

META = b"\x00kstream:"
USER = b"\x01"

Write = tuple[bytes, bytes | None]  # a key and its new value; None deletes it


class Partition(ABC):
    """One task's keys and values, as bytes."""

    # The value of one key, None where absent. An attribute, set to the backend's own
    # lookup (dict.get, Rdict.get): a read of the state adds no Python call of its own.
    get: Callable[[bytes], bytes | None]

    @abstractmethod
    def get_many(self, keys: list[bytes]) -> list[bytes | None]:
        """The values of many keys in one call (None where absent)."""

    @abstractmethod
    def items(self) -> Iterable[tuple[bytes, bytes]]:
        """Every key of the USER namespace, with its value."""

    @abstractmethod
    def write(self, writes: Iterable[Write]) -> None:
        """Apply all the writes together: a batch's changes are never half applied."""

    @abstractmethod
    def __len__(self) -> int:
        """How many keys of the USER namespace it holds (may be an estimate)."""
