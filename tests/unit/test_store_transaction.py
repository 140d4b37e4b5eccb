"""The batch transaction (kstream/state/transaction.py), the same test body over each
backend: the dict a local run uses and the RocksDB a worker uses."""

from __future__ import annotations

import pytest

import kstream
from kstream.errors import FormatError
from kstream.local import LocalRunner
from kstream.state.memory import MemoryStore
from kstream.state.partition import USER
from kstream.state.rocks import RocksStore, StoreMemory
from kstream.state.transaction import BATCH_THROUGH, CHANGELOG_NEXT, BatchTransaction
from tests.unit.offline import CODEC
from tests.unit.state_helpers import store_of

T = 5000


def open_store(backend: str, path) -> BatchTransaction:
    if backend == "memory":
        return MemoryStore(CODEC, "op")
    return RocksStore(str(path), ("c", 0), StoreMemory(8), CODEC, "op")


@pytest.fixture(params=["memory", "rocksdb"])
def backend(request) -> str:
    return request.param


@pytest.fixture
def store(backend, tmp_path):
    store = open_store(backend, tmp_path / "s")
    yield store
    if isinstance(store, RocksStore):
        store.close()


def committed(store: BatchTransaction) -> dict:
    """What the backend holds: the operator's keys and values, decoded."""
    return {CODEC.loads_key(k[1:]): CODEC.loads(v) for k, v in store.partition.items()}


def test_reads_see_the_pending_writes_the_backend_does_not(store):
    store.put("a", [1])
    store.put(("k", 2), {"x": 1})
    assert store.get("a") == [1]
    assert store.get_many([("k", 2), "missing", "a"]) == [{"x": 1}, None, [1]]
    assert ("k", 2) in store and "missing" not in store
    assert store.get("missing", "default") == "default"
    assert sorted(store.items(), key=repr) == [("a", [1]), (("k", 2), {"x": 1})]
    assert committed(store) == {}


def test_a_pending_value_is_the_object_put_until_a_commit(store):
    value = [1]
    store.put("a", value)
    store.get("a").append(2)  # in place, as an operator may
    assert store.get("a") is value
    store.commit(None)
    after = store.get("a")
    assert after == [1, 2] and after is not value
    assert store.get("a") is not after  # a committed value is read anew each time


def test_reads_merge_pending_changes_with_committed_values(store):
    for key in ("a", "b", "c"):
        store.put(key, key.upper())
    store.commit(None)
    store.put("b", "B2")
    store.delete("c")
    store.put("d", "D")
    assert store.get_many(["a", "b", "c", "d"]) == ["A", "B2", None, "D"]
    assert sorted(store.items()) == [("a", "A"), ("b", "B2"), ("d", "D")]
    assert "c" not in store
    assert committed(store) == {"a": "A", "b": "B", "c": "C"}


def test_a_delete_hides_the_committed_value_and_the_commit_removes_it(store):
    store.put("a", 1)
    store.commit(None)
    store.delete("a")
    store.delete("never")
    assert (store.get("a"), store.get("a", 0), list(store.items())) == (None, 0, [])
    store.commit(None)
    assert committed(store) == {}


def test_rollback_undoes_the_changes_since_the_savepoint(store):
    store.put("a", [1])
    store.put("gone", 1)
    store.commit(None)
    store.put("p", [0])  # pending from an earlier batch of the same step
    store.savepoint()
    store.get("p").append(9)  # changed in place after the savepoint
    store.put("a", [2])
    store.put("b", 3)
    store.delete("gone")
    assert store.get_many(["p", "a", "b", "gone"]) == [[0, 9], [2], 3, None]
    store.rollback()
    assert store.get_many(["p", "a", "b", "gone"]) == [[0], [1], None, 1]
    assert sorted(store.items(), key=repr) == [("a", [1]), ("gone", 1), ("p", [0])]


def test_the_savepoint_stays_after_a_rollback(store):
    store.savepoint()
    store.put("a", 1)
    store.rollback()
    store.put("b", 2)
    store.rollback()
    assert (store.get("a"), store.get("b")) == (None, None)
    assert store.changes() == []


def test_values_read_from_pending_through_get_many_or_items_are_protected_too(store):
    store.put("a", [1])
    store.put("b", [1])
    store.savepoint()
    (a,) = store.get_many(["a"])
    a.append(2)
    dict(store.items())["b"].append(2)
    store.rollback()
    assert store.get_many(["a", "b"]) == [[1], [1]]


def test_a_rollback_without_a_savepoint_is_a_no_op(store):
    store.put("a", 1)
    store.rollback()  # none taken
    store.savepoint()
    store.commit(None)  # a commit ends the savepoint
    store.rollback()  # nor does a rollback start one
    store.put("b", 2)
    store.rollback()
    assert (store.get("a"), store.get("b")) == (1, 2)
    assert committed(store) == {"a": 1}


def test_changes_are_the_changelog_records_ending_with_the_batch(store):
    assert store.changes() == []
    store.put("a", [1])
    store.put("b", 2)
    store.delete("b")
    store.delete("c")
    store.processed(T, 7)
    assert store.changes() == [
        (USER + CODEC.dumps_key("a"), CODEC.dumps([1])),
        (USER + CODEC.dumps_key("b"), None),
        (USER + CODEC.dumps_key("c"), None),
        (BATCH_THROUGH, f"{T}:7".encode()),
    ]


def test_commit_persists_the_changes_with_the_changelog_position(store):
    assert (store.changelog_next(), store.batch_through()) == (0, None)
    store.put("a", 1)
    store.processed(T, 7)
    store.commit(12)
    assert committed(store) == {"a": 1}
    assert (store.changelog_next(), store.batch_through()) == (12, (T, 7))
    assert store.changes() == []  # the transaction starts over
    store.commit(None)  # nothing pending: nothing written
    assert (store.changelog_next(), store.batch_through()) == (12, (T, 7))


def test_a_store_restored_from_the_changelog_holds_the_same(store, backend, tmp_path):
    store.put("a", [1])
    store.put(("k", "x"), {"n": 2})
    store.commit(None)
    store.delete("a")
    store.put("b", 3)
    store.processed(T, 9)
    records = [(USER + CODEC.dumps_key("a"), CODEC.dumps([1]))]
    records += [(USER + CODEC.dumps_key(("k", "x")), CODEC.dumps({"n": 2}))]
    records += store.changes()
    store.commit(4)

    rebuilt = open_store(backend, tmp_path / "rebuilt")
    try:
        assert rebuilt.apply_changelog(records[:2], 2) == 2
        assert rebuilt.apply_changelog(records[2:], 4) == 3
        assert rebuilt.apply_changelog((), 5) == 0  # the end of the partition
        assert sorted(rebuilt.items(), key=repr) == sorted(store.items(), key=repr)
        assert (rebuilt.changelog_next(), rebuilt.batch_through()) == (5, (T, 9))
    finally:
        if isinstance(rebuilt, RocksStore):
            rebuilt.close()


def test_a_value_the_codec_does_not_carry_fails_naming_the_operator(store):
    with pytest.raises(FormatError, match=r"^op: a key of its state cannot be written"):
        store.put(object(), 1)
    store.put("a", object())
    with pytest.raises(FormatError, match=r"^op: a value of its state cannot be written"):
        store.commit(None)


def test_a_memory_store_counts_only_the_operators_keys():
    store = MemoryStore(CODEC, "op")
    store.put("a", 1)
    store.put("b", 2)
    store.processed(T, 1)
    store.commit(3)
    assert len(store) == 2
    assert store.partition.get(CHANGELOG_NEXT) == b"3"


def test_a_local_run_commits_each_batch_so_state_changed_in_place_keeps_earlier_outputs():
    def collect(values, state):  # changes its state in place, and emits it
        state = state if state is not None else []
        state.extend(values)
        return state

    app = kstream.App("p", batch_interval=1.0)
    stream = app.queue_stream([[("a", 1)], [("a", 2)], [("a", 3)]])
    out = stream.update_state_by_key(collect).collect()
    runner = LocalRunner(app)
    runner.run_virtual(3)
    assert [r for _, r in out.batches] == [[("a", [1])], [("a", [1, 2])], [("a", [1, 2, 3])]]
    store = store_of(runner, "update_state_by_key")
    assert store.changes() == []
    assert committed(store) == {("k", "a"): [1, 2, 3]}
