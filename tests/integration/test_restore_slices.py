"""Restores run in slices, so they never hold up the batch loop: the worker's other tasks
go on processing while a big state is read back (real broker, real RocksDB)."""

from __future__ import annotations

import time

import kstream
from kstream.codec import Msgpack
from kstream.ops.stateful import KEY
from kstream.partitioning import partitioner
from kstream.plan import compile_plan
from kstream.state.changelog import changelog_topic
from kstream.state.partition import USER
from kstream.state.tasks import TaskStores, store_shape
from kstream.testing import FAST_CLIENT, create_topics, produce
from kstream.worker import Worker

CODEC = Msgpack()


def record(key, value) -> tuple[bytes, bytes, None]:
    """A changelog record as a store in the default format writes it."""
    return USER + CODEC.dumps_key(key), CODEC.dumps(value), None


def test_a_big_restore_is_read_in_slices(bootstrap, app_id, tmp_path):
    app = kstream.App(app_id, batch_interval=1.0, brokers=bootstrap)
    app.stream("unused").map(lambda w: (w, 1)).update_state_by_key(
        lambda new, old: sum(new) + (old or 0)
    )
    exchange = compile_plan(app).exchanges[0]
    node = exchange.target
    changelog = changelog_topic(app_id, node.name)
    create_topics(bootstrap, {changelog: 2})
    big = [record(f"k{i}", i) for i in range(300_000)]
    produce(bootstrap, changelog, big, partition=0, headers=CODEC.headers)
    produce(bootstrap, changelog, [record("small", 7)], partition=1, headers=CODEC.headers)

    restored: list[tuple[str, int, float, int]] = []
    stores = TaskStores(
        app_id,
        str(tmp_path),
        {exchange.topic: [node]},
        {node: store_shape(node)},
        {node: CODEC},
        bootstrap,
        {},
        lambda name, seconds, n: restored.append((name, n)),
        {exchange.topic: 2},
        memory_mb=64,
    )
    stores.assign([(exchange.topic, 0), (exchange.topic, 1)])
    finished_at: dict[int, int] = {}
    slices = 0
    while stores.restoring:
        slices += 1
        assert slices < 2000, "the restore never finished"
        for (_, p), through in stores.restore(budget=0.02).items():
            finished_at[p] = slices
            assert through is None  # a changelog without batch markers
    try:
        # (which of the two ends first depends on the broker's fetch sizes: Tansu answers
        # a partition's whole backlog in one fetch, ahead of the other's end)
        assert finished_at[1] <= finished_at[0], finished_at
        assert finished_at[0] > 1, "the big restore was not sliced"
        assert sorted(restored, key=lambda r: r[1]) == [(node.name, 1), (node.name, 300_000)]
        small, large = stores.store_of(node, 1), stores.store_of(node, 0)
        assert dict(small.items()) == {"small": 7}
        assert large.get("k0") == 0 and large.get("k299999") == 299_999
        assert sum(1 for _ in large.items()) == 300_000
        assert large.changelog_next() == 300_000 and small.changelog_next() == 1
    finally:
        stores.close()


def test_other_tasks_run_while_a_big_state_is_restored(bootstrap, topics, app_id, tmp_path):
    """A worker assigned a task with a big changelog keeps running its source stage (and
    producing) while that task's state is read back; the task then joins, complete.
    (map_with_state: it touches only the keys of its records, so 300k restored keys
    cost nothing per batch.)"""
    source, out = topics("slices-in", 2), topics("slices-out")
    app = kstream.App(
        app_id, batch_interval=1.0, brokers=bootstrap, state_dir=str(tmp_path), kafka=FAST_CLIENT
    )
    app.stream(source).map(lambda w: (w, 1)).map_with_state(kstream.StateSpec(count)).to(out)
    worker = Worker(app)
    worker.prepare()
    exchange = worker.plan.exchanges[0]
    node = exchange.target
    changelog = changelog_topic(app_id, node.name)
    # a big state for task 0, as a previous worker would have left it
    big = [record((KEY, f"old{i}"), [1, 0]) for i in range(300_000)]
    produce(bootstrap, changelog, big, partition=0, headers=CODEC.headers)
    start = int(time.time() * 1000) - 60_000
    produce(bootstrap, source, [(None, b"w", start + i * 100) for i in range(100)])
    worker.restore_slice = 0.02  # thin slices: the restore spans many iterations
    worker.start()
    source_runs_while_restoring = 0
    try:
        deadline = time.monotonic() + 60
        while True:
            assert time.monotonic() < deadline, "the word never reached its total"
            restoring = worker.stores.restoring
            before = worker.stages[0].closer.closed_through
            worker.step()
            if restoring and worker.stages[0].closer.closed_through != before:
                source_runs_while_restoring += 1
            store = worker.stores.open.get((node, exchange_partition(worker, "w")))
            if store is not None and (store.get((KEY, "w")) or [0])[0] == 100:
                break
        assert source_runs_while_restoring > 0, "the source stage waited for the restore"
        assert worker.stores.store_of(node, 0).get((KEY, "old299999")) == [1, 0]
    finally:
        worker.close()


def count(key: str, value: int, state) -> tuple[str, int]:
    n = (state.get() if state.exists() else 0) + value
    state.update(n)
    return key, n


def exchange_partition(worker: Worker, key: str) -> int:
    x = worker.plan.exchanges[0]
    return partitioner(x.shuffle.by, worker.exchange_partitions[x.topic])((key, 1))
