"""The RocksDB store (kstream/state/rocks.py): a savepoint undoes a batch's changes, those
made in place to values it read included."""

from __future__ import annotations

from kstream.state.rocks import RocksStore, StoreMemory
from tests.unit.offline import CODEC


def test_a_savepoint_protects_pending_values_changed_in_place(tmp_path):
    store = RocksStore(str(tmp_path / "s"), ("c", 0), StoreMemory(8), CODEC, "op")
    store.put("a", [1])
    store.put("gone", 1)
    store.savepoint()
    store.get("a").append(2)  # in place, as an operator may
    store.put("b", 3)
    store.delete("gone")
    assert (store.get("a"), store.get("b"), store.get("gone")) == ([1, 2], 3, None)
    store.rollback()
    assert (store.get("a"), store.get("b"), store.get("gone")) == ([1], None, 1)
    store.savepoint()
    assert sorted(store.items()) == [("a", [1]), ("gone", 1)]
    store.commit(None)
    store.put("c", 1)  # no savepoint after a commit: nothing recorded
    assert store._undo is None
    store.close()
