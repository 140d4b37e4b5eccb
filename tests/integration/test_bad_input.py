"""A record that cannot be deserialized is reported with its place and skipped (under
on_error="skip"; the default, "dlq", is in test_poison.py)."""

from __future__ import annotations

import time
from collections import Counter

from kstream.testing import produce, read_topic
from tests.integration.workers import spawn_worker, stop, wait_for


def test_undecodable_record_is_logged_and_the_rest_is_processed(
    bootstrap, topics, app_id, tmp_path
):
    source, output = topics("lines", 1), topics("counts", 1)
    now = int(time.time() * 1000) - 5000
    produce(
        bootstrap,
        source,
        [(None, b"a b", now), (None, b"\xff\xfe not utf-8", now + 1), (None, b"b c", now + 2)],
    )
    log = tmp_path / "w.log"
    env = {"KS_TEST_INPUT": source, "KS_TEST_OUTPUT": output, "KSTREAM_ON_ERROR": "skip"}
    worker = spawn_worker("wordcount.py", app_id, bootstrap, log, env)

    def counted() -> Counter:
        return Counter(
            {m.key().decode(): int(m.value()) for m in read_topic(bootstrap, output, idle=0.3)}
        )

    wait_for(lambda: counted() == Counter({"a": 1, "b": 2, "c": 1}), 30, "the good lines")
    assert worker.poll() is None, "the worker must keep running"
    assert stop(worker) == 0
    text = log.read_text()
    assert f"skipping record {source}[0]@1: cannot deserialize" in text, text[-2000:]
