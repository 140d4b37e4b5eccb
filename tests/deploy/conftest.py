"""Shared facts and helpers for the deployment tests (Dockerfile, compose, Helm chart).

Nothing here needs a broker, a Docker engine, a cluster or the network: the chart is
rendered with the Helm library (helm-python-sdk), manifests are checked with
kubernetes-validate's bundled schemas, and compose with the vendored compose-spec schema.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from kstream.cli import worker as worker_command

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "deploy" / "helm" / "kstream"
COMPOSE = REPO / "docker-compose.yml"
PROMETHEUS = REPO / "deploy" / "prometheus"
GRAFANA = REPO / "deploy" / "grafana"
VENDOR = Path(__file__).resolve().parent / "vendor"

KUBE_VERSION = "1.30.0"

# The CLI contract: every KSTREAM_* variable `kstream worker` reads (from its options)
CLI_ENV = {
    name
    for p in worker_command.params
    for name in ([p.envvar] if isinstance(p.envvar, str) else p.envvar or [])
}
METRICS_PORT = 9400
STATE_DIR = "/var/lib/kstream"
EXAMPLE_APP = "/app/examples/wordcount.py"

# The metric catalogue: name -> (type, labels besides app_id, which every series has).
# test_observability checks it against kstream.observe.metrics.CATALOGUE.
METRICS: dict[str, tuple[str, tuple[str, ...]]] = {
    "kstream_records_consumed_total": ("counter", ("topic",)),
    "kstream_records_produced_total": ("counter", ("topic",)),
    "kstream_batch_processing_seconds": ("histogram", ()),
    "kstream_batch_scheduling_delay_seconds": ("histogram", ()),
    "kstream_batch_records": ("histogram", ()),
    "kstream_last_batch_time_seconds": ("gauge", ()),
    "kstream_watermark_seconds": ("gauge", ()),
    "kstream_consumer_lag": ("gauge", ("topic", "partition")),
    "kstream_late_records_total": ("counter", ("topic",)),
    "kstream_state_keys": ("gauge", ("store",)),
    "kstream_restore_seconds": ("gauge", ("store",)),
    "kstream_restore_records_total": ("counter", ("store",)),
    "kstream_commits_total": ("counter", ()),
    "kstream_commit_seconds": ("histogram", ()),
    "kstream_rebalances_total": ("counter", ("kind",)),
    "kstream_errors_total": ("counter", ("kind",)),
    "kstream_dlq_records_total": ("counter", ("topic", "reason")),
    "kstream_ready": ("gauge", ()),
    "kstream_batch_interval_seconds": ("gauge", ()),
}
# Series names a query may use: histograms are queried through their _bucket/_sum/_count.
# `up` is the series Prometheus itself writes for every scrape target.
SERIES = {"up"} | {
    name + suffix
    for name, (kind, _) in METRICS.items()
    for suffix in (("_bucket", "_sum", "_count") if kind == "histogram" else ("",))
}
# Labels every series has once scraped (plus `le` on histogram buckets).
TARGET_LABELS = {"app_id", "instance", "job"}


def series_labels(series: str) -> set[str]:
    """The labels a query on `series` may group by."""
    if series == "up":
        return {"instance", "job"}
    base = series.removesuffix("_bucket").removesuffix("_sum").removesuffix("_count")
    if base not in METRICS:
        base = series
    labels = TARGET_LABELS | set(METRICS[base][1])
    return labels | {"le"} if series.endswith("_bucket") else labels


def promql_grouping_labels(expr: str) -> set[str]:
    """Labels named in by/without/on/ignoring/group_* clauses."""
    labels = set()
    for m in re.finditer(
        r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)", expr
    ):
        labels |= {x.strip() for x in m.group(1).split(",") if x.strip()}
    return labels


_PROMQL_KEYWORDS = {
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
    "bool", "offset", "inf", "nan",
}  # fmt: skip


def promql_metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (a small tokenizer, enough for our rules).

    Drops strings, label matchers {...}, range selectors [...], grouping clauses
    by/without/on/ignoring/group_*(...), Grafana variables and function calls; what is left
    as a bare identifier is a metric name.
    """
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^{}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    text = re.sub(r"\$\{?\w+\}?", " ", text)
    names = set()
    for m in re.finditer(r"(?<![\w.])([A-Za-z_:][A-Za-z0-9_:]*)(\s*\()?", text):
        name, call = m.group(1), m.group(2)
        if call or name.lower() in _PROMQL_KEYWORDS:
            continue
        names.add(name)
    return names


def load_yaml(path: Path):
    return yaml.safe_load(path.read_text())


@pytest.fixture(scope="session")
def compose() -> dict:
    return load_yaml(COMPOSE)
