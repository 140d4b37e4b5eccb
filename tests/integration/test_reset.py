"""`kstream reset`: offsets, internal topics and local state go; the next run starts over."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from kstream.kafka.admin import Admin
from kstream.testing import create_topics, produce, read_topic
from tests.integration.test_state_restore import final_totals
from tests.integration.workers import APPS, spawn_worker, stop, wait_for


def run_reset(app, bootstrap, app_id, state, env, *args, answer=None):
    where = ["--brokers", bootstrap, "--state-dir", str(state), "--app-id", app_id]
    return subprocess.run(
        [sys.executable, "-m", "kstream", "reset", str(APPS / app), *where, *args],
        capture_output=True,
        text=True,
        input=answer,
        timeout=120,
        env={**os.environ, **env},
    )


def gone(bootstrap: str, topic: str, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while topic in Admin(bootstrap, {}).partitions():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def test_reset_deletes_offsets_internal_topics_and_state(bootstrap, topics, app_id, tmp_path):
    source, output = topics("lines", 2), topics("counts", 1)
    now = int(time.time() * 1000)
    produce(bootstrap, source, [(None, b"a b a", now - 5000)])
    env = {"KS_TEST_INPUT": source, "KS_TEST_OUTPUT": output}
    worker = spawn_worker("wordcount.py", app_id, bootstrap, tmp_path / "w.log", env)
    wait_for(lambda: len(read_topic(bootstrap, output, idle=0.3)) >= 2, 30, "first counts")
    assert stop(worker) == 0
    repartition = f"{app_id}--reduce_by_key.add--repartition"
    assert repartition in Admin(bootstrap, {}).partitions()

    state = tmp_path / "state"
    (state / app_id / "some-store").mkdir(parents=True)
    r = run_reset("wordcount.py", bootstrap, app_id, state, env, "--yes")
    assert r.returncode == 0, r.stderr
    assert f"deleted internal topic {repartition}" in r.stdout
    assert f"deleted dead-letter topic {app_id}-dlq" in r.stdout
    assert not (state / app_id).exists()
    assert gone(bootstrap, repartition)

    # the group starts over: the input is counted again from offset 0
    worker = spawn_worker("wordcount.py", app_id, bootstrap, tmp_path / "w2.log", env)
    wait_for(lambda: len(read_topic(bootstrap, output, idle=0.3)) >= 4, 30, "a second count")
    assert stop(worker) == 0


def test_an_app_starts_and_resets_beside_an_app_whose_id_it_prefixes(
    bootstrap, topics, app_id, tmp_path
):
    """Another app's internal topics (app id `<ours>-v2`) are neither taken for ours at
    start nor deleted by our reset; a reset lists what it deletes and asks first; and
    --operator drops one operator's state only."""
    theirs = f"{app_id}-v2--update_state_by_key.add--changelog"
    create_topics(bootstrap, {theirs: 1})
    source, output = topics("lines", 2), topics("totals", 1)
    now = int(time.time() * 1000)
    produce(bootstrap, source, [(None, b"a b b", now - 3000)])
    state = tmp_path / "state"
    env = {"KS_TEST_INPUT": source, "KS_TEST_OUTPUT": output, "KS_TEST_STATE": str(state)}
    worker = spawn_worker("running_count.py", app_id, bootstrap, tmp_path / "w.log", env)
    try:
        wait_for(lambda: final_totals(bootstrap, output) == {"a": 1, "b": 2}, 60, "totals")
    finally:
        assert stop(worker) == 0, (tmp_path / "w.log").read_text()[-3000:]
    changelog = f"{app_id}--update_state_by_key.add--changelog"
    repartition = f"{app_id}--update_state_by_key.add--repartition"
    store = state / app_id / "update_state_by_key.add"
    assert store.is_dir()

    asked = run_reset("running_count.py", bootstrap, app_id, state, env, answer="n\n")
    assert asked.returncode == 1, asked.stderr  # declined: nothing deleted
    listed = asked.stdout
    assert f"topic {changelog}" in listed and f"topic {repartition}" in listed, listed
    assert f"consumer group {app_id}" in listed and theirs not in listed, listed
    assert changelog in Admin(bootstrap, {}).partitions()

    one = run_reset(
        "running_count.py",
        bootstrap,
        app_id,
        state,
        env,
        "--operator",
        "update_state_by_key.add",
        "--yes",
    )
    assert one.returncode == 0, one.stderr
    assert f"deleted internal topic {changelog}" in one.stdout
    assert "consumer group" not in one.stdout and repartition not in one.stdout, one.stdout
    assert gone(bootstrap, changelog) and not store.exists()
    assert repartition in Admin(bootstrap, {}).partitions()

    unknown = run_reset(
        "running_count.py", bootstrap, app_id, state, env, "--operator", "nope", "--yes"
    )
    assert unknown.returncode == 2 and "keeps no state under that name" in unknown.stderr

    everything = run_reset("running_count.py", bootstrap, app_id, state, env, "--yes")
    assert everything.returncode == 0, everything.stderr
    assert f"deleted internal topic {repartition}" in everything.stdout
    assert theirs not in everything.stdout
    assert gone(bootstrap, repartition)
    assert theirs in Admin(bootstrap, {}).partitions()
