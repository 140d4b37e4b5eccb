"""Prometheus scrape config, alert rules and the Grafana dashboard: metric names and wiring."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from .conftest import (
    GRAFANA,
    METRICS,
    METRICS_PORT,
    PROMETHEUS,
    SERIES,
    load_yaml,
    promql_grouping_labels,
    promql_metric_names,
    series_labels,
)


def check_query(expr: str) -> None:
    """Only catalogue metrics, grouped only by labels those metrics have."""
    names = promql_metric_names(expr)
    assert names, expr
    assert names <= SERIES, (expr, names - SERIES)
    allowed = set().union(*(series_labels(n) for n in names))
    grouping = promql_grouping_labels(expr)
    assert grouping <= allowed, (expr, grouping - allowed)


def test_catalogue_matches_what_kstream_exports():
    from kstream.observe.metrics import CATALOGUE

    exported = {spec.name: (spec.kind, tuple(spec.labels)) for spec in CATALOGUE}
    assert exported == METRICS


def test_promql_metric_names_helper():
    expr = (
        'histogram_quantile(0.9, sum by (app_id, le) (rate(kstream_x_bucket{a="b"}[5m])))'
        " > on (app_id) max by (app_id) (kstream_y) and time() - up offset 5m"
    )
    assert promql_metric_names(expr) == {"kstream_x_bucket", "kstream_y", "up"}
    assert promql_grouping_labels(expr) == {"app_id", "le"}


@pytest.fixture(scope="module")
def prometheus_config() -> dict:
    return load_yaml(PROMETHEUS / "prometheus.yml")


@pytest.fixture(scope="module")
def alert_rules() -> list[dict]:
    groups = load_yaml(PROMETHEUS / "alerts.yml")["groups"]
    return [rule for group in groups for rule in group["rules"]]


def test_prometheus_scrapes_every_worker_replica(prometheus_config, compose):
    (job,) = [j for j in prometheus_config["scrape_configs"] if j["job_name"] == "kstream"]
    assert job.get("metrics_path", "/metrics") == "/metrics"
    (sd,) = job["dns_sd_configs"]
    # The compose service name resolves to one A record per replica.
    assert sd["names"] == ["worker"]
    assert "worker" in compose["services"]
    assert sd["type"] == "A"
    assert sd["port"] == METRICS_PORT


def test_prometheus_loads_the_alert_rules(prometheus_config):
    rule_files = prometheus_config["rule_files"]
    assert rule_files == ["alerts.yml"]
    for name in rule_files:
        assert (PROMETHEUS / name).is_file()


def test_alert_rules_are_well_formed(alert_rules):
    names = [r["alert"] for r in alert_rules]
    assert len(names) == len(set(names))
    for rule in alert_rules:
        assert rule["expr"].strip()
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert rule["annotations"]["summary"]
        assert rule["annotations"]["description"]


def test_alert_rules_use_only_kstream_metrics_and_their_labels(alert_rules):
    for rule in alert_rules:
        check_query(rule["expr"])


@pytest.mark.parametrize(
    ("alert", "metrics"),
    [
        ("KstreamConsumerLagGrowing", {"kstream_consumer_lag"}),
        (
            "KstreamSchedulingDelayAboveBatchInterval",
            {"kstream_batch_scheduling_delay_seconds_bucket", "kstream_batch_interval_seconds"},
        ),
        ("KstreamDeadLetterRecords", {"kstream_dlq_records_total"}),
        ("KstreamWorkerNotReady", {"kstream_ready"}),
    ],
)
def test_the_required_alerts_exist(alert_rules, alert, metrics):
    rule = next(r for r in alert_rules if r["alert"] == alert)
    assert promql_metric_names(rule["expr"]) == metrics


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")
def test_promtool_accepts_config_and_rules():
    for args in (["check", "config"], ["check", "rules"]):
        target = "prometheus.yml" if args[1] == "config" else "alerts.yml"
        proc = subprocess.run(
            ["promtool", *args, target],
            cwd=PROMETHEUS,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr


# --- Grafana -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dashboard() -> dict:
    return json.loads((GRAFANA / "kstream-dashboard.json").read_text())


def panels(dashboard: dict) -> list[dict]:
    out = []
    for panel in dashboard["panels"]:
        out.append(panel)
        out.extend(panel.get("panels", []))  # collapsed rows
    return out


def test_dashboard_queries_use_only_kstream_metrics(dashboard):
    exprs = [t["expr"] for p in panels(dashboard) for t in p.get("targets", [])]
    assert len(exprs) >= 20
    used = set()
    for expr in exprs:
        check_query(expr)
        used |= promql_metric_names(expr)
    # Every metric of the catalogue shows up somewhere.
    catalogue = {s.removesuffix("_bucket") for s in SERIES if not s.endswith(("_sum", "_count"))}
    assert catalogue - {"up"} <= {u.removesuffix("_bucket") for u in used}


def test_dashboard_is_portable(dashboard):
    assert dashboard["uid"] == "kstream"
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    ids = [p["id"] for p in panels(dashboard)]
    assert len(ids) == len(set(ids))
    for panel in panels(dashboard):
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${datasource}"
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}"
            assert 'app_id=~"$app_id"' in target["expr"]


def test_grafana_provisioning(compose):
    (source,) = load_yaml(GRAFANA / "provisioning" / "datasources" / "prometheus.yml")[
        "datasources"
    ]
    assert source["type"] == "prometheus"
    assert source["url"] == "http://prometheus:9090"
    assert "prometheus" in compose["services"]
    (provider,) = load_yaml(GRAFANA / "provisioning" / "dashboards" / "kstream.yml")["providers"]
    mounts = [v.split(":")[1] for v in compose["services"]["grafana"]["volumes"]]
    assert f"{provider['options']['path']}/kstream-dashboard.json" in mounts
