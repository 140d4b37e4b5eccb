"""A RocksDB store (rocksdict) whose batch of changes is made durable in two steps:
the changelog records are produced with the batch's outputs, and once Kafka has
acknowledged them the changes and the next changelog offset go into RocksDB in one
WriteBatch. So the local store is never ahead of the changelog.

Every key starts with its namespace byte, in RocksDB and in the changelog alike: USER and
the key's encoding for the operator's keys, META and a name for the store's own, so no
encoding of a key can collide with them; the operator's keys, after the metadata, are
read with one seek."""

from __future__ import annotations

import os
from collections.abc import Hashable, Iterable, Iterator
from typing import Any

from rocksdict import BlockBasedOptions, Cache, Options, Rdict, WriteBatch, WriteBufferManager

from kstream.codec import Codec
from kstream.errors import FormatError
from kstream.state.store import Store

META = b"\x00kstream:"
USER = b"\x01"
CHANGELOG_NEXT = META + b"changelog-next"
SHAPE = META + b"shape"
FORMAT = META + b"format"  # the codec's format: a store holds one
# The newest batch whose changes the store holds, and how far its input had been read then
BATCH_THROUGH = META + b"batch-through"
_DELETED = object()
_ABSENT = object()  # in an undo log: the key had no pending change


class StoreMemory:
    """One memory budget for all the stores of a worker: half for memtables (the newest
    writes, flushed to disk when the half is full), half for the block cache (what was
    read). RocksDB's defaults give each store 64 MB of memtables or more, with no bound
    across stores: the worker's memory would grow with its state."""

    def __init__(self, megabytes: int):
        half = megabytes * 1024 * 1024 // 2
        self.cache = Cache(half)
        self.write_buffers = WriteBufferManager(half, False)
        self.write_buffer_size = max(1 << 20, min(half // 2, 16 << 20))  # per memtable

    def options(self) -> Options:
        options = Options(raw_mode=True)
        options.set_write_buffer_manager(self.write_buffers)
        options.set_write_buffer_size(self.write_buffer_size)
        table = BlockBasedOptions()
        table.set_block_cache(self.cache)
        options.set_block_based_table_factory(table)
        return options


class RocksStore(Store):
    def __init__(
        self,
        path: str,
        changelog_key: tuple[str, int],
        memory: StoreMemory,
        codec: Codec,
        operator: str,
    ):
        super().__init__(codec, operator)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        self.path = path
        self.changelog_key = changelog_key  # (changelog topic, partition)
        self.db = Rdict(path, memory.options())
        self._check_format()
        self.pending: dict[bytes, Any] = {}  # this batch's changes, by encoded key
        self.pending_batch: bytes | None = None
        # since the savepoint: each pending key touched, and its pending value before
        self._undo: dict[bytes, Any] | None = None

    def _check_format(self) -> None:
        """A new store takes its codec's format; an old one must hold it already."""
        held = self.db.get(FORMAT)
        if held is None and self.db.get(SHAPE) is None:
            self.db[FORMAT] = self.codec.format.encode()
            return
        if held != self.codec.format.encode():
            self.db.close()
            what = "no format (an earlier kstream's)" if held is None else held.decode()
            raise FormatError(
                f"state store {self.path} holds {what}, {self.operator} now writes "
                f"{self.codec.format}: run `kstream reset` for this app to start its "
                "state over"
            )

    def _user_key(self, key: Hashable) -> bytes:
        return USER + self._key(key)

    # -- savepoints (a failed batch is rolled back, see kstream/poison.py) ---------------
    def savepoint(self) -> None:
        """From here on, changes can be rolled back. A pending value of an earlier batch
        is copied when the batch first touches it, so changing it in place (an operator
        may) leaves the original for a rollback."""
        self._undo = {}

    def rollback(self) -> None:
        """Undo the changes since the savepoint (which stays in place)."""
        undo, self._undo = self._undo, {}
        for k, old in (undo or {}).items():
            if old is _ABSENT:
                self.pending.pop(k, None)
            else:
                self.pending[k] = old

    def _touch(self, k: bytes) -> None:
        undo = self._undo
        if undo is None or k in undo:
            return
        old = self.pending.get(k, _ABSENT)
        undo[k] = old
        if old is not _ABSENT and old is not _DELETED:
            self.pending[k] = self.codec.loads(self._value(old))

    # -- the Store interface ---------------------------------------------------------
    def get(self, key: Hashable, default: Any = None) -> Any:
        k = self._user_key(key)
        if k in self.pending:
            self._touch(k)
            value = self.pending[k]
            return default if value is _DELETED else value
        raw = self.db.get(k)
        return default if raw is None else self.codec.loads(raw)

    def get_many(self, keys: Iterable[Hashable]) -> list[Any]:
        encoded = [self._user_key(k) for k in keys]
        if self._undo is not None:
            for k in encoded:
                if k in self.pending:
                    self._touch(k)
        stored = self.db[[k for k in encoded if k not in self.pending]] if encoded else []
        it = iter(stored)
        out = []
        loads = self.codec.loads
        for k in encoded:
            if k in self.pending:
                value = self.pending[k]
                out.append(None if value is _DELETED else value)
            else:
                raw = next(it)
                out.append(None if raw is None else loads(raw))
        return out

    def put(self, key: Hashable, value: Any) -> None:
        k = self._user_key(key)
        if self._undo is not None and k not in self._undo:
            self._undo[k] = self.pending.get(k, _ABSENT)
        self.pending[k] = value

    def delete(self, key: Hashable) -> None:
        k = self._user_key(key)
        if self._undo is not None and k not in self._undo:
            self._undo[k] = self.pending.get(k, _ABSENT)
        self.pending[k] = _DELETED

    def items(self) -> Iterator[tuple[Hashable, Any]]:
        if self._undo is not None:
            for k in list(self.pending):
                self._touch(k)
        seen = set()
        out = []
        loads_key, loads = self.codec.loads_key, self.codec.loads
        for k, raw in self.db.items(from_key=USER):  # past the metadata keys
            seen.add(k)
            value = self.pending.get(k, raw)
            if value is _DELETED:
                continue
            out.append((loads_key(k[1:]), loads(raw) if value is raw else value))
        out.extend(
            (loads_key(k[1:]), v)
            for k, v in self.pending.items()
            if k not in seen and v is not _DELETED
        )
        return iter(out)

    def __len__(self) -> int:
        """RocksDB's estimate of the committed keys (for metrics, not for logic)."""
        estimate = self.db.property_int_value("rocksdb.estimate-num-keys") or 0
        return max(0, estimate - 4)  # less the metadata keys

    # -- durability ------------------------------------------------------------------
    def processed(self, t: int, input_position: int) -> None:
        """Batch t ran on this store, its input read up to input_position: a replay of
        those records after a crash is skipped, since the state already holds them."""
        self.pending_batch = f"{t}:{input_position}".encode()

    def changes(self) -> list[tuple[bytes, bytes | None]]:
        """This batch's changes as changelog records (None value = deleted), ending with
        the batch marker, so a store rebuilt from the changelog knows it too."""
        value = self._value
        out = [(k, None if v is _DELETED else value(v)) for k, v in self.pending.items()]
        if self.pending_batch is not None:
            out.append((BATCH_THROUGH, self.pending_batch))
        return out

    def commit(self, changelog_next: int | None) -> None:
        """Write the batch's changes and the changelog position in one WriteBatch."""
        self._undo = None
        if not self.pending and changelog_next is None and self.pending_batch is None:
            return
        wb = WriteBatch(raw_mode=True)
        for k, v in self.pending.items():
            if v is _DELETED:
                wb.delete(k)
            else:
                wb.put(k, self._value(v))
        if changelog_next is not None:
            wb.put(CHANGELOG_NEXT, str(changelog_next).encode())
        if self.pending_batch is not None:
            wb.put(BATCH_THROUGH, self.pending_batch)
        self.db.write(wb)
        self.pending.clear()
        self.pending_batch = None

    def batch_through(self) -> tuple[int, int] | None:
        """(newest batch held, input position then), or None for a new store."""
        raw = self.db.get(BATCH_THROUGH)
        if raw is None:
            return None
        t, position = raw.decode().split(":")
        return int(t), int(position)

    def apply_changelog(
        self, records: Iterable[tuple[bytes, bytes | None]], next_offset: int
    ) -> int:
        """Restore: apply changelog records as they are, then remember where they ended."""
        wb = WriteBatch(raw_mode=True)
        n = 0
        for k, v in records:
            if v is None:
                wb.delete(k)
            else:
                wb.put(k, v)
            n += 1
        wb.put(CHANGELOG_NEXT, str(next_offset).encode())
        self.db.write(wb)
        return n

    def changelog_next(self) -> int:
        raw = self.db.get(CHANGELOG_NEXT)
        return int(raw) if raw is not None else 0

    def shape(self) -> str | None:
        raw = self.db.get(SHAPE)
        return None if raw is None else raw.decode()

    def set_shape(self, shape: str) -> None:
        self.db[SHAPE] = shape.encode()

    def close(self) -> None:
        self.db.close()
