"""State on Kafka: stores restored from their changelogs (docs/design.md §4, §9.5)."""

from __future__ import annotations

import shutil
import signal
import time
from collections import Counter

import kstream
from kstream.testing import FAST_CLIENT, produce, read_topic
from kstream.worker import Worker
from tests.integration.test_worker_processes import PARTITIONS, produce_lines
from tests.integration.workers import make_lines, spawn_worker, stop, wait_for


def final_totals(bootstrap: str, topic: str) -> dict[str, int]:
    """Each word's running total in the newest batch that reports it."""
    newest: dict[str, tuple[int, int]] = {}
    for m in read_topic(bootstrap, topic, idle=1.0):
        word, t = m.key().decode(), m.timestamp()[1]
        if word not in newest or t >= newest[word][0]:
            newest[word] = (t, int(m.value()))
    return {w: v for w, (_, v) in newest.items()}


def test_kill_9_and_a_new_machine_restore_the_same_state(bootstrap, topics, app_id, tmp_path):
    source, output = topics("lines", PARTITIONS), topics("totals", 4)
    records, per_batch = make_lines(PARTITIONS, per_partition=300, seconds=20)
    produce_lines(bootstrap, source, records)
    expected = Counter()
    for counts in per_batch.values():
        expected.update(counts)

    first_dir = tmp_path / "machine-a"
    env = {
        "KS_TEST_INPUT": source,
        "KS_TEST_OUTPUT": output,
        "KS_TEST_PAUSE": "0.4",
        "KS_TEST_STATE": str(first_dir),
    }
    log = tmp_path / "worker.log"
    first = spawn_worker("running_count.py", app_id, bootstrap, log, env)
    wait_for(lambda: len(read_topic(bootstrap, output, idle=0.3)) > 0, 60, "first totals")
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    shutil.rmtree(first_dir)  # the worker comes back on a machine without its state

    env = {**env, "KS_TEST_STATE": str(tmp_path / "machine-b"), "KS_TEST_PAUSE": "0"}
    second = spawn_worker("running_count.py", app_id, bootstrap, log, env)
    try:
        wait_for(
            lambda: final_totals(bootstrap, output) == dict(expected),
            90,
            "the totals of every word",
        )
    finally:
        assert stop(second) == 0, log.read_text()[-3000:]
    assert "restored update_state_by_key" in log.read_text()


def test_state_follows_its_partitions_from_two_workers_to_one_and_back(
    bootstrap, topics, app_id, tmp_path
):
    source, output = topics("lines", PARTITIONS), topics("totals", 4)
    records, per_batch = make_lines(PARTITIONS, per_partition=300, seconds=20)
    expected = Counter()
    for counts in per_batch.values():
        expected.update(counts)
    first_half = [r for r in records if r[2] < min(per_batch) + 9000]
    second_half = [r for r in records if r[2] >= min(per_batch) + 9000]

    def env(i: int) -> dict[str, str]:
        return {
            "KS_TEST_INPUT": source,
            "KS_TEST_OUTPUT": output,
            "KS_TEST_STATE": str(tmp_path / f"machine-{i}"),
        }

    log = tmp_path / "workers.log"
    produce_lines(bootstrap, source, first_half)
    two = [spawn_worker("running_count.py", app_id, bootstrap, log, env(i)) for i in (1, 2)]
    half = Counter()
    for r in first_half:
        half.update(r[1].split())
    try:
        wait_for(lambda: final_totals(bootstrap, output) == dict(half), 90, "the first half")
    finally:
        assert stop(two[1]) == 0  # one worker leaves: its partitions and state move
    produce_lines(bootstrap, source, second_half)
    three = spawn_worker("running_count.py", app_id, bootstrap, log, env(3))  # and a new one
    try:
        wait_for(lambda: final_totals(bootstrap, output) == dict(expected), 90, "all totals")
    finally:
        assert stop(two[0]) == 0 and stop(three) == 0, log.read_text()[-3000:]


def run_totals(bootstrap, app_id, env, log, expected) -> None:
    worker = spawn_worker("running_count.py", app_id, bootstrap, log, env)
    try:
        wait_for(lambda: final_totals(bootstrap, env["KS_TEST_OUTPUT"]) == expected, 60, "totals")
    finally:
        assert stop(worker) == 0, log.read_text()[-3000:]


def first_totals(bootstrap, topics, app_id, tmp_path) -> tuple[str, dict[str, str], int]:
    """The running count over "a b" and "b" by a first worker: (source, env, now)."""
    source, output = topics("lines", 2), topics("totals", 1)
    now = int(time.time() * 1000)
    produce_lines(bootstrap, source, [(0, "a b", now - 3000), (1, "b", now - 3000)])
    env = {"KS_TEST_INPUT": source, "KS_TEST_OUTPUT": output}
    env["KS_TEST_STATE"] = str(tmp_path / "state")
    run_totals(bootstrap, app_id, env, tmp_path / "w.log", {"a": 1, "b": 2})
    return source, env, now


def test_state_survives_stateless_steps_added_upstream(bootstrap, topics, app_id, tmp_path):
    """The store, changelog and repartition topic are named by the operator, not by its
    position: a filter and a map added before update_state_by_key keep its totals."""
    source, env, now = first_totals(bootstrap, topics, app_id, tmp_path)

    produce_lines(bootstrap, source, [(0, "A c", now + 2000), (1, "b", now + 2000)])
    edited = {**env, "KS_TEST_VARIANT": "edited"}
    run_totals(bootstrap, app_id, edited, tmp_path / "edited.log", {"a": 2, "b": 3, "c": 1})
    # and on a machine without the local stores: restored from the same changelog
    produce_lines(bootstrap, source, [(1, "c", now + 4000)])
    moved = {**edited, "KS_TEST_STATE": str(tmp_path / "elsewhere")}
    run_totals(bootstrap, app_id, moved, tmp_path / "moved.log", {"a": 2, "b": 3, "c": 2})


def test_state_of_a_renamed_operator_is_refused_naming_it(bootstrap, topics, app_id, tmp_path):
    _, env, _ = first_totals(bootstrap, topics, app_id, tmp_path)

    log = tmp_path / "renamed.log"
    renamed = {**env, "KS_TEST_VARIANT": "renamed"}
    changed = spawn_worker("running_count.py", app_id, bootstrap, log, renamed)
    assert changed.wait(60) == 2
    text = log.read_text()
    errors = [line for line in text.splitlines() if line.startswith("kstream: error:")]
    assert len(errors) == 1 and "Traceback" not in text, text[-3000:]
    assert "update_state_by_key.add" in errors[0]
    assert "kstream reset APP --operator update_state_by_key.add" in errors[0]


def add(new_values, total):
    return sum(new_values) + (total or 0)


def test_a_restored_state_does_not_take_the_input_it_holds_twice(
    bootstrap, topics, app_id, tmp_path
):
    """A worker's state changes reached the changelog, but the offsets of their input (the
    repartition topic) were never committed, as when a worker dies between its flush and
    its commit. The next owner restores that state and reads the same records again: it
    must skip them (`PartitionTask.restored_through`), whatever the broker keeps of commit
    metadata (the repartition offsets have none here)."""
    source, out = topics("held-in", 2), topics("held-out")
    words = ["a", "b", "a", "c", "a", "b", "c", "a"]
    start = int(time.time() * 1000) - 8_000
    produce(bootstrap, source, [(None, w.encode(), start + i * 400) for i, w in enumerate(words)])

    def worker(machine: str) -> Worker:
        app = kstream.App(
            app_id,
            batch_interval=1.0,
            brokers=bootstrap,
            kafka=FAST_CLIENT,
            state_dir=str(tmp_path / machine),
        )
        app.stream(source).map(lambda w: (w, 1)).update_state_by_key(add).to(out)
        w = Worker(app)
        w.prepare()
        w.start()
        return w

    first = worker("machine-a")
    commit = first.delivery.finish

    def commit_source_offsets_only(consumer, offsets):
        commit(consumer, [tp for tp in offsets if tp.topic == source])

    first.delivery.finish = commit_source_offsets_only
    try:
        deadline = time.monotonic() + 60
        while final_totals(bootstrap, out) != Counter(words):
            assert time.monotonic() < deadline, "the first worker's totals"
            first.loop(duration=1.0)
    finally:
        first.close()  # (no commit: offsets are committed at the end of a step only)

    second = worker("machine-b")  # a new machine: its state comes from the changelog
    began = int(time.time() * 1000)
    try:
        deadline = time.monotonic() + 60
        while (second.stages[1].closer.closed_through or 0) < began + 2000:
            assert time.monotonic() < deadline, "the second worker's batches"
            second.loop(duration=1.0)
        restored = [task.restored_through for task in second.stages[1].tasks.values()]
        assert any(restored), "the restored stores said what they hold"
        # its store's size was reported (RocksDB's estimate: 3 keys, a, b and c, at least)
        sizes = second.observer.timeline.snapshot()["state"]
        assert [s["store"] for s in sizes] == ["update_state_by_key.add"], sizes
        assert sizes[0]["keys"] >= 3, sizes
    finally:
        second.close()
    assert final_totals(bootstrap, out) == Counter(words)
