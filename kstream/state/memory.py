"""The store of a local run (queue streams, kstream/local.py): the batch transaction over a
dict, so local tests run the same transaction logic as a worker's RocksDB stores."""

from __future__ import annotations

from collections.abc import Iterable

from kstream.codec import Codec
from kstream.state.partition import USER, Partition, Write
from kstream.state.transaction import BatchTransaction


class MemoryPartition(Partition):
    """Encoded keys and values in a dict, as RocksDB holds them."""

    def __init__(self) -> None:
        self.data: dict[bytes, bytes] = {}
        self.get = self.data.get

    def get_many(self, keys: list[bytes]) -> list[bytes | None]:
        return list(map(self.data.get, keys))

    def items(self) -> list[tuple[bytes, bytes]]:
        return [(k, v) for k, v in self.data.items() if k.startswith(USER)]

    def write(self, writes: Iterable[Write]) -> None:
        data = self.data
        for k, v in writes:
            if v is None:
                data.pop(k, None)
            else:
                data[k] = v

    def __len__(self) -> int:
        return sum(1 for k in self.data if k.startswith(USER))


class MemoryStore(BatchTransaction):
    """Like a RocksDB store, a value read after a commit is never the object stored (or
    emitted) before it, and a key or value the codec does not carry fails here, in a
    local test, rather than on Kafka."""

    def __init__(self, codec: Codec, operator: str) -> None:
        super().__init__(MemoryPartition(), codec, operator)
