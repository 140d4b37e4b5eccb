"""A task's store on Kafka: the batch transaction (kstream/state/transaction.py) over
RocksDB (rocksdict), whose writes go in one WriteBatch, and the metadata only a store
kept on disk needs: the format and the operator's shape it was written in."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator

from rocksdict import BlockBasedOptions, Cache, Options, Rdict, WriteBatch, WriteBufferManager

from kstream.codec import Codec
from kstream.errors import FormatError
from kstream.state.partition import META, USER, Partition, Write
from kstream.state.transaction import BatchTransaction

SHAPE = META + b"shape"
FORMAT = META + b"format"  # the codec's format: a store holds one


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


class RocksPartition(Partition):
    """One task's keys in a RocksDB database of its own, under `path`."""

    def __init__(self, path: str, memory: StoreMemory):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        self.db = Rdict(path, memory.options())
        self.get = self.db.get

    def get_many(self, keys: list[bytes]) -> list[bytes | None]:
        return self.db[keys]

    def items(self) -> Iterator[tuple[bytes, bytes]]:
        return self.db.items(from_key=USER)  # past the metadata keys

    def write(self, writes: Iterable[Write]) -> None:
        wb = WriteBatch(raw_mode=True)
        for k, v in writes:
            if v is None:
                wb.delete(k)
            else:
                wb.put(k, v)
        self.db.write(wb)

    def __len__(self) -> int:
        """RocksDB's estimate."""
        estimate = self.db.property_int_value("rocksdb.estimate-num-keys") or 0
        return max(0, estimate - 4)  # less the metadata keys

    def close(self) -> None:
        self.db.close()


class RocksStore(BatchTransaction):
    """A task's store for one operator; its changes go to `changelog_key`."""

    partition: RocksPartition

    def __init__(
        self,
        path: str,
        changelog_key: tuple[str, int],
        memory: StoreMemory,
        codec: Codec,
        operator: str,
    ):
        super().__init__(RocksPartition(path, memory), codec, operator)
        self.path = path
        self.changelog_key = changelog_key  # (changelog topic, partition)
        self._check_format()

    def _check_format(self) -> None:
        """A new store takes its codec's format; an old one must hold it already."""
        held = self.partition.get(FORMAT)
        if held is None and self.partition.get(SHAPE) is None:
            self.partition.write([(FORMAT, self.codec.format.encode())])
            return
        if held != self.codec.format.encode():
            self.close()
            what = "no format (an earlier kstream's)" if held is None else held.decode()
            raise FormatError(
                f"state store {self.path} holds {what}, {self.operator} now writes "
                f"{self.codec.format}: run `kstream reset` for this app to start its "
                "state over"
            )

    def shape(self) -> str | None:
        raw = self.partition.get(SHAPE)
        return None if raw is None else raw.decode()

    def set_shape(self, shape: str) -> None:
        self.partition.write([(SHAPE, shape.encode())])

    def close(self) -> None:
        self.partition.close()
