"""No code from a topic, on a real broker: a pickle written to an internal topic by
someone else is not loaded by a worker, which stops with one line naming the topic."""

from __future__ import annotations

import pickle
import time

from confluent_kafka import Producer

from kstream.testing import create_topics, produce
from tests.integration.workers import spawn_worker, stop, wait_for


class Boom:
    """Unpickling it creates a file: what an attacker's payload would do."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def write(bootstrap: str, topic: str, key: bytes | None, value: bytes, headers=None) -> None:
    """One record to partition 0, as anyone with write access to the topic could."""
    p = Producer({"bootstrap.servers": bootstrap})
    p.produce(topic, value, key, 0, headers=headers)
    assert p.flush(30) == 0


def stops_refusing(worker, log, topic: str, pwned) -> str:
    """The payload did not run (no file), and the worker exited 1 with one FormatError
    line naming the topic: that line."""
    try:
        wait_for(lambda: worker.poll() is not None or pwned.exists(), 60, "the worker's exit")
    finally:
        stop(worker)
    text = log.read_text()
    assert not pwned.exists(), f"the pickle ran: {text[-3000:]}"
    lines = [line for line in text.splitlines() if "FormatError" in line]
    assert worker.returncode == 1 and len(lines) == 1, text[-3000:]
    assert f"{topic}[0]@0: a record that " in lines[0], lines[0]
    return lines[0]


def test_a_pickle_in_a_repartition_topic_does_not_run(bootstrap, topics, app_id, tmp_path):
    source, output = topics("lines", 2), topics("counts", 1)
    repartition = f"{app_id}--reduce_by_key.add--repartition"  # the word count's
    create_topics(bootstrap, {repartition: 2})
    pwned = tmp_path / "pwned"
    payload = pickle.dumps(Boom(pwned))
    write(bootstrap, repartition, None, payload, [("kstream.format", b"pickle/1")])
    now = int(time.time() * 1000)
    produce(bootstrap, source, [(None, b"a b", now - 3000)], 0)
    log = tmp_path / "worker.log"
    env = {"KS_TEST_INPUT": source, "KS_TEST_OUTPUT": output}
    worker = spawn_worker("wordcount.py", app_id, bootstrap, log, env)
    line = stops_refusing(worker, log, repartition, pwned)
    assert "'pickle/1'" in line and 'serde="pickle"' in line


def test_a_pickle_in_a_changelog_does_not_run(bootstrap, topics, app_id, tmp_path):
    source, output = topics("lines", 2), topics("totals", 1)
    changelog = f"{app_id}--update_state_by_key.add--changelog"  # the running count's
    create_topics(bootstrap, {changelog: 2})
    pwned = tmp_path / "pwned"
    payload = pickle.dumps(Boom(pwned))
    write(bootstrap, changelog, pickle.dumps(("k", "w00")), payload)
    now = int(time.time() * 1000)  # batches to run: a worker that restored it would read it
    produce(bootstrap, source, [(None, b"w00 w01", now - 3000), (None, b"w00", now - 2000)], 0)
    log = tmp_path / "worker.log"
    env = {
        "KS_TEST_INPUT": source,
        "KS_TEST_OUTPUT": output,
        "KS_TEST_STATE": str(tmp_path / "state"),
    }
    worker = spawn_worker("running_count.py", app_id, bootstrap, log, env)
    line = stops_refusing(worker, log, changelog, pwned)
    assert "has no kstream.format header" in line
