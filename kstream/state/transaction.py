"""The batch transaction: a task's state changes since the last commit, over any backend.

Reads see the pending changes; a savepoint lets a failed batch be undone (kstream/poison.py);
the changes go to the changelog with the batch's outputs and, once Kafka has acknowledged
them, into the backend in one write with the next changelog offset and the batch they
belong to (docs/design.md §4, §5), so the local store is never ahead of the changelog. One
class over RocksDB (kstream/state/rocks.py) and over a dict (kstream/state/memory.py).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Iterator, Sequence
from itertools import chain
from typing import Any

from kstream.codec import Codec
from kstream.state.partition import META, USER, Partition, Write
from kstream.state.store import Store

CHANGELOG_NEXT = META + b"changelog-next"
# The newest batch whose changes the store holds, and how far its input had been read then
BATCH_THROUGH = META + b"batch-through"
_DELETED = object()
_ABSENT = object()  # in an undo log: the key had no pending change


class BatchTransaction(Store):
    """The `Store` operators use, over one task's `partition`. Pending values are kept
    as the operator's objects (encoded once, for the changelog and the commit)."""

    def __init__(self, partition: Partition, codec: Codec, operator: str):
        super().__init__(codec, operator)
        self.partition = partition
        self._read = partition.get
        self._pending: dict[bytes, Any] = {}  # the changes, by encoded key
        self._batch: bytes | None = None  # the BATCH_THROUGH value to write with them
        # since the savepoint: each pending key touched, and its pending value before
        self._undo: dict[bytes, Any] | None = None

    # -- savepoints (a failed batch is rolled back, see kstream/poison.py) ---------------
    def savepoint(self) -> None:
        """From here on, changes can be rolled back. A pending value of an earlier batch
        is copied when the batch first touches it, so changing it in place (an operator
        may) leaves the original for a rollback."""
        self._undo = {}

    def rollback(self) -> None:
        """Undo the changes since the savepoint, which stays in place; without one (none
        was taken since the last commit) there is nothing to undo."""
        if self._undo is None:
            return
        undo, self._undo = self._undo, {}
        for k, old in undo.items():
            if old is _ABSENT:
                self._pending.pop(k, None)
            else:
                self._pending[k] = old

    def _touch(self, k: bytes) -> None:
        undo = self._undo
        if undo is None or k in undo:
            return
        old = self._pending.get(k, _ABSENT)
        undo[k] = old
        if old is not _ABSENT and old is not _DELETED:
            self._pending[k] = self.codec.loads(self._value(old))

    # -- the Store interface ---------------------------------------------------------
    def get(self, key: Hashable, default: Any = None) -> Any:
        k = USER + self._key(key)
        if k in self._pending:
            self._touch(k)
            value = self._pending[k]
            return default if value is _DELETED else value
        raw = self._read(k)
        return default if raw is None else self.codec.loads(raw)

    def get_many(self, keys: Iterable[Hashable]) -> list[Any]:
        pending = self._pending
        encoded = [USER + self._key(k) for k in keys]
        if self._undo is not None:
            for k in encoded:
                if k in pending:
                    self._touch(k)
        stored = self.partition.get_many([k for k in encoded if k not in pending])
        it = iter(stored)
        out = []
        loads = self.codec.loads
        for k in encoded:
            if k in pending:
                value = pending[k]
                out.append(None if value is _DELETED else value)
            else:
                raw = next(it)
                out.append(None if raw is None else loads(raw))
        return out

    def put(self, key: Hashable, value: Any) -> None:
        k = USER + self._key(key)
        if self._undo is not None and k not in self._undo:
            self._undo[k] = self._pending.get(k, _ABSENT)
        self._pending[k] = value

    def delete(self, key: Hashable) -> None:
        k = USER + self._key(key)
        if self._undo is not None and k not in self._undo:
            self._undo[k] = self._pending.get(k, _ABSENT)
        self._pending[k] = _DELETED

    def items(self) -> Iterator[tuple[Hashable, Any]]:
        pending = self._pending
        if self._undo is not None:
            for k in list(pending):
                self._touch(k)
        seen = set()
        out = []
        loads_key, loads = self.codec.loads_key, self.codec.loads
        for k, raw in self.partition.items():
            seen.add(k)
            value = pending.get(k, raw)
            if value is _DELETED:
                continue
            out.append((loads_key(k[1:]), loads(raw) if value is raw else value))
        out.extend(
            (loads_key(k[1:]), v) for k, v in pending.items() if k not in seen and v is not _DELETED
        )
        return iter(out)

    def __len__(self) -> int:
        """The committed keys (RocksDB's estimate: for metrics, not for logic)."""
        return len(self.partition)

    # -- durability ------------------------------------------------------------------
    def processed(self, t: int, input_position: int) -> None:
        """Batch t ran on this store, its input read up to input_position: a replay of
        those records after a crash is skipped, since the state already holds them."""
        self._batch = f"{t}:{input_position}".encode()

    def changes(self) -> list[Write]:
        """The pending changes as changelog records (None value = deleted), ending with
        the batch marker, so a store rebuilt from the changelog knows it too."""
        value = self._value
        out = [(k, None if v is _DELETED else value(v)) for k, v in self._pending.items()]
        if self._batch is not None:
            out.append((BATCH_THROUGH, self._batch))
        return out

    def commit(self, changelog_next: int | None) -> None:
        """Write the changes (and the changelog position, if any) to the backend at once;
        the transaction starts over, without a savepoint."""
        self._undo = None
        if not self._pending and changelog_next is None and self._batch is None:
            return
        writes = self.changes()
        if changelog_next is not None:
            writes.append((CHANGELOG_NEXT, str(changelog_next).encode()))
        self.partition.write(writes)
        self._pending.clear()
        self._batch = None

    def batch_through(self) -> tuple[int, int] | None:
        """(newest batch held, input position then), or None for a new store."""
        raw = self._read(BATCH_THROUGH)
        if raw is None:
            return None
        t, position = raw.decode().split(":")
        return int(t), int(position)

    # -- restore ---------------------------------------------------------------------
    def apply_changelog(self, records: Sequence[Write], next_offset: int) -> int:
        """Restore: apply changelog records as they are, past the pending changes (there
        are none before a task runs), then remember where they ended. Returns how many."""
        self.partition.write(chain(records, ((CHANGELOG_NEXT, str(next_offset).encode()),)))
        return len(records)

    def changelog_next(self) -> int:
        raw = self._read(CHANGELOG_NEXT)
        return int(raw) if raw is not None else 0
