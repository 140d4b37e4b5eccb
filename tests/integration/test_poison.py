"""Poison records on a real broker: dead-lettered with their place and error, the rest
processed exactly; `kstream dlq redrive` puts them back; the skip and fail policies."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter, defaultdict

import pytest

from kstream.kafka.admin import Admin
from kstream.testing import produce, read_topic
from tests.integration.workers import APPS, read_to_end, spawn_worker, stop, wait_for

ITEMS = [f"i{i:02d}" for i in range(12)]


def orders(partitions: int, per_partition: int, seconds: int):
    """JSON orders over `seconds` of event time ending a minute ago; every 100th is poison,
    alternately invalid JSON and a quantity of 0.

    Returns (records per partition as (key, value, ts, headers), the expected totals per
    batch time, the poison records by (partition, offset) with their expected headers)."""
    end = (int(time.time()) - 60) * 1000
    start = end - seconds * 1000
    records: dict[int, list] = defaultdict(list)
    expected: dict[int, Counter] = defaultdict(Counter)
    poison = {}
    for p in range(partitions):
        for i in range(per_partition):
            ts = start + (i * seconds * 1000) // per_partition + p
            item = ITEMS[(i * 7 + p) % len(ITEMS)]
            qty = 1 + (i + p) % 5
            key = f"order-{p}-{i}".encode() if i % 3 else None
            headers = [("origin", f"shop-{p}".encode())] if i % 2 else None
            batch = ts - ts % 1000 + 1000
            if i % 100 == 50:
                if (i // 100 + p) % 2:
                    value = f'{{"item": "{item}", "qty": '.encode()  # cut short
                    why = {
                        "reason": "deserialize",
                        "type": "json.decoder.JSONDecodeError",
                        "message": json_error(value),
                        "operator": "source-1 (value_serde=json)",
                    }
                else:
                    value = json.dumps({"item": item, "qty": 0}).encode()
                    why = {
                        "reason": "function",
                        "type": "ZeroDivisionError",
                        "message": "integer division or modulo by zero",
                        "operator": "map-2 (poisoned.price)",
                    }
                poison[(p, i)] = (key, value, ts, headers, {**why, "batch": str(batch)})
            else:
                value = json.dumps({"item": item, "qty": qty}).encode()
                expected[batch][item] += 100 // qty
            records[p].append((key, value, ts, headers))
    return records, dict(expected), poison


def json_error(raw: bytes) -> str:
    try:
        json.loads(raw)
    except json.JSONDecodeError as e:
        return str(e)
    raise AssertionError(raw)


def produce_with_headers(bootstrap: str, topic: str, p: int, records: list) -> None:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    for key, value, ts, headers in records:
        producer.produce(topic, value, key, p, timestamp=ts, headers=headers)
        producer.poll(0)
    assert producer.flush(60) == 0


def totals(bootstrap: str, topic: str) -> dict[int, Counter]:
    got: dict[int, Counter] = defaultdict(Counter)
    for m in read_topic(bootstrap, topic, idle=0.5):
        got[m.timestamp()[1]][m.key().decode()] += int(m.value())
    return dict(got)


def kstream_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "kstream", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env},
    )


@pytest.mark.parametrize("guarantee", ["at-least-once", "exactly-once"])
def test_poison_records_are_dead_lettered_and_redriven(
    bootstrap, topics, app_id, tmp_path, guarantee
):
    source, output = topics("orders", 2), topics("totals", 1)
    records, expected, poison = orders(partitions=2, per_partition=1000, seconds=20)
    assert len(poison) == 20  # 1% of 2000
    for p, recs in records.items():
        produce_with_headers(bootstrap, source, p, recs)
    env = {"KS_TEST_INPUT": source, "KS_TEST_OUTPUT": output}
    worker_env = {**env, "KSTREAM_GUARANTEE": guarantee, "KSTREAM_STATE_DIR": str(tmp_path)}
    log = tmp_path / "w.log"
    worker = spawn_worker("poisoned.py", app_id, bootstrap, log, worker_env)
    dlq = f"{app_id}-dlq"
    try:
        wait_for(lambda: totals(bootstrap, output) == expected, 90, "the exact totals")
        wait_for(lambda: len(read_topic(bootstrap, dlq, idle=0.3)) >= 20, 30, "20 dead letters")
        time.sleep(2)  # nothing more comes
        assert totals(bootstrap, output) == expected
        letters = read_topic(bootstrap, dlq, idle=0.5)
        assert worker.poll() is None, "the worker must keep running"
    finally:
        code = stop(worker)
    assert code == 0, log.read_text()[-3000:]

    assert len(letters) == 20
    seen = set()
    for m in letters:
        all_headers = m.headers() or []
        h = {k: v.decode() for k, v in all_headers if k.startswith("kstream.error.")}
        p, offset = int(h["kstream.error.partition"]), int(h["kstream.error.offset"])
        key, value, ts, own, why = poison[(p, offset)]
        seen.add((p, offset))
        assert (m.key(), m.value(), m.timestamp()[1]) == (key, value, ts)
        assert [x for x in all_headers if not x[0].startswith("kstream.error.")] == (own or [])
        assert h == {
            **{f"kstream.error.{k}": v for k, v in why.items()},
            "kstream.error.topic": source,
            "kstream.error.partition": str(p),
            "kstream.error.offset": str(offset),
            "kstream.error.timestamp": str(ts),
            "kstream.error.app_id": app_id,
        }
    assert seen == set(poison)
    text = log.read_text()
    assert "dead-lettered" in text and "Traceback" not in text

    # a dead letter from a repartition topic cannot be redriven: it is counted
    repartition = f"{app_id}--reduce_by_key.add--repartition"
    header = [("kstream.error.topic", repartition.encode())]
    produce_with_headers(bootstrap, dlq, 0, [(None, b"pickled", 0, header)])

    app = str(APPS / "poisoned.py")
    common = ["--brokers", bootstrap, "--app-id", app_id]
    before = len(read_to_end(bootstrap, source))
    r = kstream_cli("dlq", "redrive", app, *common, "--dry-run", env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("would re-publish ") == 20 + 1, r.stdout
    assert f"would re-publish 20 record(s) to {source}" in r.stdout
    assert f"skipped 1 record(s) from {repartition} (a repartition topic" in r.stdout
    assert len(read_to_end(bootstrap, source)) == before

    r = kstream_cli("dlq", "redrive", app, *common, env=env)
    assert r.returncode == 0, r.stderr
    assert f"re-published 20 record(s) to {source}" in r.stdout, r.stdout
    back = [m for m in read_to_end(bootstrap, source) if m.offset() >= 1000]
    assert len(back) == 20
    got = {
        (m.partition(), m.key(), m.value(), m.timestamp()[1], tuple(m.headers() or ()))
        for m in back
    }
    assert got == {
        (p, key, value, ts, tuple(own or ())) for (p, _), (key, value, ts, own, _) in poison.items()
    }

    r = kstream_cli("dlq", "redrive", app, *common, env=env)
    assert r.returncode == 0, r.stderr
    assert "nothing to redrive" in r.stdout, r.stdout
    assert len(read_to_end(bootstrap, source)) == before + 20

    r = kstream_cli("describe", app, env=env)
    assert "dead-letter topic: it-poisoned-dlq" in r.stdout, r.stderr


def small_input(bootstrap: str, source: str) -> int:
    """Two good lines, an invalid one, a good one; returns the bad record's offset."""
    start = (int(time.time()) - 5) * 1000  # all in one batch
    lines = [
        b'{"item": "a", "qty": 1}',
        b'{"item": "b", "qty": 2}',
        b"{oops",
        b'{"item": "a", "qty": 0}',
    ]
    produce(bootstrap, source, [(None, v, start + i) for i, v in enumerate(lines)], partition=0)
    return 2


def test_skip_logs_the_poison_records_and_goes_on(bootstrap, topics, app_id, tmp_path):
    source, output = topics("orders", 1), topics("totals", 1)
    bad = small_input(bootstrap, source)
    env = {"KS_TEST_INPUT": source, "KS_TEST_OUTPUT": output, "KSTREAM_ON_ERROR": "skip"}
    log = tmp_path / "w.log"
    worker = spawn_worker("poisoned.py", app_id, bootstrap, log, env)
    try:
        want = {"a": 100, "b": 50}
        wait_for(
            lambda: (
                {k: v for c in totals(bootstrap, output).values() for k, v in c.items()} == want
            ),
            60,
            "the good records",
        )
        time.sleep(1)
        assert worker.poll() is None
    finally:
        code = stop(worker)
    assert code == 0
    text = log.read_text()
    assert f"skipping record {source}[0]@{bad}: cannot deserialize in source-1" in text, text
    assert f"{app_id}-dlq" not in Admin(bootstrap, {}).partitions()


def test_fail_stops_the_worker_with_one_line(bootstrap, topics, app_id, tmp_path):
    source, output = topics("orders", 1), topics("totals", 1)
    bad = small_input(bootstrap, source)
    env = {"KS_TEST_INPUT": source, "KS_TEST_OUTPUT": output, "KSTREAM_ON_ERROR": "fail"}
    log = tmp_path / "w.log"
    worker = spawn_worker("poisoned.py", app_id, bootstrap, log, env)
    assert worker.wait(60) == 1
    errors = [ln for ln in log.read_text().splitlines() if "PoisonRecordError" in ln]
    assert len(errors) == 1, log.read_text()
    assert f"poison record {source}[0]@{bad} in batch" in errors[0]
    assert "cannot deserialize" in errors[0] and "on_error=fail" in errors[0]
    assert read_topic(bootstrap, output, idle=0.3) == []  # its batch committed nothing
