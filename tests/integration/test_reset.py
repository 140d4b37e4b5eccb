"""`kstream reset`: offsets, internal topics and local state go; the next run starts over."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from kstream.kafka.admin import Admin
from kstream.testing import produce, read_topic
from tests.integration.workers import APPS, spawn_worker, stop, wait_for


def test_reset_deletes_offsets_internal_topics_and_state(bootstrap, topics, app_id, tmp_path):
    source, output = topics("lines", 2), topics("counts", 1)
    now = int(time.time() * 1000)
    produce(bootstrap, source, [(None, b"a b a", now - 5000)])
    env = {"KS_TEST_INPUT": source, "KS_TEST_OUTPUT": output}
    worker = spawn_worker("wordcount.py", app_id, bootstrap, tmp_path / "w.log", env)
    wait_for(lambda: len(read_topic(bootstrap, output, idle=0.3)) >= 2, 30, "first counts")
    assert stop(worker) == 0
    repartition = f"{app_id}-reduce_by_key-4-repartition"
    assert repartition in Admin(bootstrap, {}).partitions()

    state = tmp_path / "state"
    (state / app_id / "some-store").mkdir(parents=True)
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "kstream",
            "reset",
            str(APPS / "wordcount.py"),
            "--yes",
            "--brokers",
            bootstrap,
            "--state-dir",
            str(state),
            "--app-id",
            app_id,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env},
    )
    assert r.returncode == 0, r.stderr
    assert f"deleted internal topic {repartition}" in r.stdout
    assert f"deleted dead-letter topic {app_id}-dlq" in r.stdout
    assert not (state / app_id).exists()
    deadline = time.monotonic() + 10
    while repartition in Admin(bootstrap, {}).partitions() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert repartition not in Admin(bootstrap, {}).partitions()

    # the group starts over: the input is counted again from offset 0
    worker = spawn_worker("wordcount.py", app_id, bootstrap, tmp_path / "w2.log", env)
    wait_for(lambda: len(read_topic(bootstrap, output, idle=0.3)) >= 4, 30, "a second count")
    assert stop(worker) == 0
