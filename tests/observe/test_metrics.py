import math

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from kstream.observe import CATALOGUE, Metrics


def samples(metrics: Metrics) -> dict[tuple[str, frozenset], float]:
    text = metrics.exposition().decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(metrics: Metrics, name: str, **labels: str) -> float | None:
    labels = {"app_id": metrics.app_id, **labels}
    return samples(metrics).get((name, frozenset(labels.items())))


def test_catalogue_names_follow_conventions():
    names = [spec.name for spec in CATALOGUE]
    assert len(names) == len(set(names)) == 19
    for spec in CATALOGUE:
        assert spec.name.startswith("kstream_")
        assert spec.name.endswith("_total") == (spec.kind == "counter"), spec.name
        assert "app_id" not in spec.labels
        assert spec.doc


def test_every_catalogued_metric_is_registered_with_its_type():
    m = Metrics("app")
    families = {f.name: f.type for f in text_string_to_metric_families(m.exposition().decode())}
    for spec in CATALOGUE:
        base = spec.name.removesuffix("_total") if spec.kind == "counter" else spec.name
        assert families.get(base) == spec.kind, spec.name


def test_records_and_topic_labels():
    m = Metrics("wc")
    m.records_consumed("lines", 10)
    m.records_consumed("lines", 5)
    m.records_consumed("other", 1)
    m.records_produced("word-counts", 7)
    m.late_records("lines", 2)
    m.dlq("lines", "function", 3)
    m.dlq("lines", "deserialize")
    assert value(m, "kstream_records_consumed_total", topic="lines") == 15
    assert value(m, "kstream_records_consumed_total", topic="other") == 1
    assert value(m, "kstream_records_produced_total", topic="word-counts") == 7
    assert value(m, "kstream_late_records_total", topic="lines") == 2
    assert value(m, "kstream_dlq_records_total", topic="lines", reason="function") == 3
    assert value(m, "kstream_dlq_records_total", topic="lines", reason="deserialize") == 1


def test_batch_completed_updates_histograms_and_last_batch_time():
    m = Metrics("wc")
    assert value(m, "kstream_last_batch_time_seconds") is None  # unknown until a batch
    m.batch_completed(1000.0, records=50, processing_seconds=0.2, scheduling_delay_seconds=0.03)
    m.batch_completed(1001.0, records=150, processing_seconds=0.4, scheduling_delay_seconds=0.0)
    assert value(m, "kstream_last_batch_time_seconds") == 1001.0
    assert value(m, "kstream_batch_processing_seconds_count") == 2
    assert math.isclose(value(m, "kstream_batch_processing_seconds_sum"), 0.6)
    assert value(m, "kstream_batch_processing_seconds_bucket", le="0.25") == 1
    assert value(m, "kstream_batch_processing_seconds_bucket", le="0.5") == 2
    assert value(m, "kstream_batch_scheduling_delay_seconds_count") == 2
    assert math.isclose(value(m, "kstream_batch_scheduling_delay_seconds_sum"), 0.03)
    assert value(m, "kstream_batch_records_sum") == 200
    assert value(m, "kstream_batch_records_bucket", le="100.0") == 1
    assert value(m, "kstream_batch_records_bucket", le="1000.0") == 2


def test_gauges():
    m = Metrics("wc")
    m.set_watermark(1234.5)
    m.state_keys("counts", 42)
    m.set_batch_interval(2.0)
    assert value(m, "kstream_watermark_seconds") == 1234.5
    assert value(m, "kstream_state_keys", store="counts") == 42
    assert value(m, "kstream_batch_interval_seconds") == 2.0
    assert m.batch_interval == 2.0


def test_lag_per_partition_and_forget_on_revoke():
    m = Metrics("wc")
    m.set_lag("lines", 0, 100)
    m.set_lag("lines", 1, 5)
    m.set_lag("lines", 0, 90)
    assert value(m, "kstream_consumer_lag", topic="lines", partition="0") == 90
    assert value(m, "kstream_consumer_lag", topic="lines", partition="1") == 5
    m.forget_partition("lines", 0)
    m.forget_partition("lines", 7)  # never seen: no error
    assert value(m, "kstream_consumer_lag", topic="lines", partition="0") is None
    assert value(m, "kstream_consumer_lag", topic="lines", partition="1") == 5


def test_restore_commits_rebalances_errors_ready():
    m = Metrics("wc")
    # zero-valued series exist before the first event
    assert value(m, "kstream_commits_total") == 0
    assert value(m, "kstream_rebalances_total", kind="lost") == 0
    assert value(m, "kstream_ready") == 0
    m.restored("counts", 1.5, 1000)
    m.restored("counts", 0.5, 10)
    m.committed(0.01)
    m.committed(0.03)
    m.rebalance("assign")
    m.rebalance("revoke")
    m.rebalance("assign")
    m.error("deserialize")
    m.set_ready(True)
    assert value(m, "kstream_restore_seconds", store="counts") == 0.5  # the last restore
    assert value(m, "kstream_restore_records_total", store="counts") == 1010
    assert value(m, "kstream_commits_total") == 2
    assert value(m, "kstream_commit_seconds_count") == 2
    assert math.isclose(value(m, "kstream_commit_seconds_sum"), 0.04)
    assert value(m, "kstream_rebalances_total", kind="assign") == 2
    assert value(m, "kstream_rebalances_total", kind="revoke") == 1
    assert value(m, "kstream_errors_total", kind="deserialize") == 1
    assert value(m, "kstream_ready") == 1
    m.set_ready(False)
    assert value(m, "kstream_ready") == 0
    with pytest.raises(ValueError):
        m.rebalance("bogus")


def test_every_series_carries_app_id():
    m = Metrics("my-app")
    m.records_consumed("t", 1)
    m.set_lag("t", 3, 1)
    m.batch_completed(1.0, 1, 0.1, 0.1)
    for name, labels in samples(m):
        assert ("app_id", "my-app") in labels, name


def test_private_registries_do_not_collide():
    a, b = Metrics("a"), Metrics("a")
    a.records_consumed("t", 1)
    assert value(a, "kstream_records_consumed_total", topic="t") == 1
    assert value(b, "kstream_records_consumed_total", topic="t") is None


def test_shared_registry_can_be_passed_in():
    registry = CollectorRegistry()
    m = Metrics("a", registry=registry)
    m.records_consumed("t", 4)
    assert (
        registry.get_sample_value("kstream_records_consumed_total", {"app_id": "a", "topic": "t"})
        == 4
    )
