"""Windows on Kafka: a live run and a replay of the same topic give the same windows."""

from __future__ import annotations

import random
import time
from collections import defaultdict

from confluent_kafka import Producer

from kstream.testing import read_topic
from tests.integration.workers import WORDS, spawn_worker, stop, wait_for


def windows(bootstrap: str, topic: str) -> dict[int, dict[str, int]]:
    got: dict[int, dict[str, int]] = defaultdict(dict)
    for m in read_topic(bootstrap, topic, idle=1.0):
        got[m.timestamp()[1]][m.key().decode()] = int(m.value())
    return dict(got)


def test_live_run_and_replay_emit_the_same_windows(bootstrap, topics, app_id, tmp_path):
    source = topics("lines", 4)
    live_out, replay_out = topics("live", 2), topics("replay", 2)
    env = {
        "KS_TEST_INPUT": source,
        "KS_TEST_OUTPUT": live_out,
        "KS_TEST_STATE": str(tmp_path / "live"),
    }
    log = tmp_path / "w.log"
    live = spawn_worker("windowed.py", app_id, bootstrap, log, env)
    wait_for(lambda: "assigned" in log.read_text(), 60, "the live worker to join")
    time.sleep(1.0)

    # 6 s of lines stamped by the producer's clock, as a live source would
    rng = random.Random(3)
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    first_ts = int(time.time() * 1000)
    while time.time() * 1000 < first_ts + 6000:
        producer.produce(
            source, " ".join(rng.choices(WORDS[:8], k=4)).encode(), partition=rng.randrange(4)
        )
        producer.poll(0)
        time.sleep(0.02)
    assert producer.flush(30) == 0
    last_ts = int(time.time() * 1000)

    first_t = first_ts - first_ts % 1000 + 1000
    last_t = last_ts - last_ts % 1000 + 1000 + 4000  # the last window that holds data
    span = [t for t in range(first_t, last_t + 1, 1000) if t % 2000 == 0]
    wait_for(lambda: max(windows(bootstrap, live_out)) >= last_t, 60, "the live windows")
    assert stop(live) == 0

    # the same topic replayed from offset 0 by a new group, with no state
    env = {**env, "KS_TEST_OUTPUT": replay_out, "KS_TEST_STATE": str(tmp_path / "replay")}
    replay = spawn_worker("windowed.py", f"{app_id}-replay", bootstrap, log, env)
    try:
        wait_for(
            lambda: max(windows(bootstrap, replay_out), default=0) >= last_t,
            60,
            "the replayed windows",
        )
    finally:
        assert stop(replay) == 0
    live_w, replay_w = windows(bootstrap, live_out), windows(bootstrap, replay_out)
    assert [live_w.get(t) for t in span] == [replay_w.get(t) for t in span]
    assert any(live_w.get(t) for t in span), "the windows hold the data"
    assert "late record" not in log.read_text()
