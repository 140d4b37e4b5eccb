"""The RocksDB store (kstream/state/rocks.py): what it keeps on disk. The transaction over
it is tested with the memory store's in tests/unit/test_store_transaction.py."""

from __future__ import annotations

from kstream.state.rocks import RocksStore, StoreMemory
from tests.unit.offline import CODEC


def open_store(path) -> RocksStore:
    return RocksStore(str(path), ("c", 3), StoreMemory(8), CODEC, "op")


def test_committed_changes_outlive_the_store_pending_ones_do_not(tmp_path):
    store = open_store(tmp_path / "s")
    store.set_shape("count")
    store.put("a", [1])
    store.put("b", 2)
    store.processed(5000, 7)
    store.commit(12)
    store.put("c", 3)  # never committed
    store.close()
    store = open_store(tmp_path / "s")
    try:
        assert sorted(store.items()) == [("a", [1]), ("b", 2)]
        assert (store.shape(), store.changelog_next(), store.batch_through()) == (
            "count",
            12,
            (5000, 7),
        )
        assert store.changelog_key == ("c", 3)
    finally:
        store.close()


def test_a_new_store_has_no_shape(tmp_path):
    store = open_store(tmp_path / "s")
    try:
        assert (store.shape(), store.changelog_next(), store.batch_through()) == (None, 0, None)
        assert list(store.items()) == []
    finally:
        store.close()
