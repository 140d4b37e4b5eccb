import logging

import pytest

from kstream.errors import ConfigError
from kstream.observe import observer as observer_module
from kstream.observe.observer import Observer


def value(obs: Observer, name: str, **labels: str) -> float | None:
    return obs.metrics.registry.get_sample_value(name, {"app_id": "app", **labels})


def test_outputs_count_once_acknowledged():
    obs = Observer("app", 1.0)
    obs.produced("out", 3)
    obs.produced("out", 2)
    assert value(obs, "kstream_records_produced_total", topic="out") is None
    obs.acknowledged()
    assert value(obs, "kstream_records_produced_total", topic="out") == 5
    obs.acknowledged()  # nothing new
    assert value(obs, "kstream_records_produced_total", topic="out") == 5


def test_late_records_count_at_once_and_warn_at_most_every_10s(caplog, monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(observer_module.time, "monotonic", lambda: now[0])
    obs = Observer("app", 1.0)
    with caplog.at_level(logging.INFO, logger="kstream.observe"):
        obs.late("lines", 2, "join")
        now[0] += 1
        obs.late("lines", 3, "join")
        obs.late("other", 1, "join")
        obs.beat()
        assert [r.getMessage() for r in caplog.records] == [
            "2 late record(s) on lines: joined the oldest open batch (late=join)"
        ]
        now[0] += 9
        obs.beat()  # the pending ones, once 10 s have passed
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [r.getMessage() for r in warnings[1:]] == [
        "3 late record(s) on lines: joined the oldest open batch (late=join)",
        "1 late record(s) on other: joined the oldest open batch (late=join)",
    ]
    assert value(obs, "kstream_late_records_total", topic="lines") == 5


def test_stop_reports_pending_late_records(caplog):
    obs = Observer("app", 1.0)
    with caplog.at_level(logging.WARNING, logger="kstream.observe"):
        obs.late("lines", 1, "drop")
        obs.late("lines", 4, "drop")  # within 10 s of the first: held back
        assert len(caplog.records) == 1
        obs.stop()
    assert [r.getMessage() for r in caplog.records] == [
        "1 late record(s) on lines: dropped (late=drop)",
        "4 late record(s) on lines: dropped (late=drop)",
    ]


def test_readiness_keeps_the_reason_and_logs_changes(caplog):
    obs = Observer("app", 1.0)
    with caplog.at_level(logging.INFO, logger="kstream.observe"):
        obs.ready(False, "joining the consumer group")
        assert obs.health.readiness() == {"ready": False, "reason": "joining the consumer group"}
        obs.ready(True, "assigned")
        obs.ready(True, "assigned")
        obs.ready(False, "restoring state")
    assert [r.getMessage() for r in caplog.records] == [
        "ready: assigned",
        "not ready: restoring state",
    ]
    assert value(obs, "kstream_ready") == 0


def test_watermark_is_absent_until_known():
    obs = Observer("app", 1.0)
    obs.watermark(None)
    assert value(obs, "kstream_watermark_seconds") is None
    obs.watermark(1_700_000_000_500)
    assert value(obs, "kstream_watermark_seconds") == 1_700_000_000.5


def test_summary_period_from_the_environment(monkeypatch):
    assert Observer("app", 1.0).summary.every_seconds == 30
    monkeypatch.setenv("KSTREAM_SUMMARY_SECONDS", "2.5")
    assert Observer("app", 1.0).summary.every_seconds == 2.5
    monkeypatch.setenv("KSTREAM_SUMMARY_SECONDS", "soon")
    with pytest.raises(ConfigError, match="KSTREAM_SUMMARY_SECONDS='soon'"):
        Observer("app", 1.0)
