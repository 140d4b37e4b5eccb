"""Every Prometheus metric kstream exports, in one place, behind one interface.

The worker never touches prometheus_client directly: it calls the methods of `Metrics`,
which name what happened (`batch_completed`, `committed`, `rebalance`, ...). The catalogue
below is the single list of metric names; docs/metrics.md documents the same list and a
test keeps the two in step.

Every series carries the label `app_id`. Each `Metrics` owns a private
`CollectorRegistry` unless one is passed in, so several workers (or tests) in one process
do not collide.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Literal

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.metrics import MetricWrapperBase

# The classic Prometheus text format, which `generate_latest` writes.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

Kind = Literal["counter", "gauge", "histogram"]

# Bucket bounds. Batch times are usually in the 10 ms .. 10 s range; a batch can hold
# anything from nothing to millions of records.
SECONDS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
COMMIT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
RECORDS_BUCKETS = (0, 1, 10, 100, 1_000, 10_000, 100_000, 1_000_000)

REBALANCE_KINDS = ("assign", "revoke", "lost")


@dataclass(frozen=True)
class MetricSpec:
    """One entry of the catalogue: the exposed name, its type, labels and meaning."""

    name: str
    kind: Kind
    labels: tuple[str, ...]  # besides app_id, which every metric has
    doc: str
    buckets: tuple[float, ...] = ()


CATALOGUE: tuple[MetricSpec, ...] = (
    MetricSpec(
        "kstream_records_consumed_total",
        "counter",
        ("topic",),
        "Records read from each source topic and filed under a batch (late ones included).",
    ),
    MetricSpec(
        "kstream_records_produced_total",
        "counter",
        ("topic",),
        "Records written to each output topic, counted once acknowledged by the broker.",
    ),
    MetricSpec(
        "kstream_batch_processing_seconds",
        "histogram",
        (),
        "Seconds each batch's job took in the source stage, until its outputs are produced.",
        SECONDS_BUCKETS,
    ),
    MetricSpec(
        "kstream_batch_scheduling_delay_seconds",
        "histogram",
        (),
        "Seconds from when a batch could first have run to the start of its job.",
        SECONDS_BUCKETS,
    ),
    MetricSpec(
        "kstream_batch_records",
        "histogram",
        (),
        "Number of input records in each completed batch.",
        RECORDS_BUCKETS,
    ),
    MetricSpec(
        "kstream_last_batch_time_seconds",
        "gauge",
        (),
        "Batch time (Unix seconds, end of the interval) of the source stage's last batch.",
    ),
    MetricSpec(
        "kstream_watermark_seconds",
        "gauge",
        (),
        "The source stage's watermark (Unix seconds): batches up to it are closed.",
    ),
    MetricSpec(
        "kstream_consumer_lag",
        "gauge",
        ("topic", "partition"),
        "Records between the read position and the end of each assigned partition.",
    ),
    MetricSpec(
        "kstream_late_records_total",
        "counter",
        ("topic",),
        "Records that arrived for a batch already closed (joined to a later one or dropped).",
    ),
    MetricSpec(
        "kstream_state_keys",
        "gauge",
        ("store",),
        "Number of keys held in each state store on this worker.",
    ),
    MetricSpec(
        "kstream_restore_seconds",
        "gauge",
        ("store",),
        "Seconds the last restore of each state store from its changelog took.",
    ),
    MetricSpec(
        "kstream_restore_records_total",
        "counter",
        ("store",),
        "Changelog records replayed into each state store by restores.",
    ),
    MetricSpec(
        "kstream_commits_total",
        "counter",
        (),
        "Completed commits of input offsets (one per loop iteration that completed batches).",
    ),
    MetricSpec(
        "kstream_commit_seconds",
        "histogram",
        (),
        "Seconds from the flush of outputs and changelogs through the offset commit.",
        COMMIT_BUCKETS,
    ),
    MetricSpec(
        "kstream_rebalances_total",
        "counter",
        ("kind",),
        "Consumer-group rebalance callbacks, by kind: assign, revoke or lost.",
    ),
    MetricSpec(
        "kstream_errors_total",
        "counter",
        ("kind",),
        "Errors seen by the worker, by kind: consumer, produce, restart, and poison "
        "records (deserialize, function, produce) whatever the on_error policy.",
    ),
    MetricSpec(
        "kstream_dlq_records_total",
        "counter",
        ("topic", "reason"),
        "Records sent to the dead-letter topic, by the input topic they were read from "
        "(the output topic, for produce) and why: deserialize, function, late or produce.",
    ),
    MetricSpec(
        "kstream_ready",
        "gauge",
        (),
        "1 when the worker is ready (assigned, stores restored, broker reachable), else 0.",
    ),
    MetricSpec(
        "kstream_batch_interval_seconds",
        "gauge",
        (),
        "The configured batch interval in seconds.",
    ),
)


def _build(spec: MetricSpec, registry: CollectorRegistry) -> MetricWrapperBase:
    labels = ("app_id", *spec.labels)
    if spec.kind == "counter":
        # prometheus_client appends `_total` itself.
        name = spec.name.removesuffix("_total")
        return Counter(name, spec.doc, labels, registry=registry)
    if spec.kind == "gauge":
        return Gauge(spec.name, spec.doc, labels, registry=registry)
    return Histogram(spec.name, spec.doc, labels, registry=registry, buckets=spec.buckets)


class Metrics:
    """The worker's metrics. All methods are cheap and thread-safe."""

    def __init__(self, app_id: str, registry: CollectorRegistry | None = None) -> None:
        self.app_id = app_id
        self.registry = registry if registry is not None else CollectorRegistry()
        self._m = {spec.name: _build(spec, self.registry) for spec in CATALOGUE}
        self._batch_interval: float | None = None
        # Series whose zero is meaningful exist from the start, so rate() and alerts work
        # before the first event. Gauges whose value is unknown until set (watermark,
        # last batch time, batch interval) stay absent until then.
        self._child("kstream_commits_total")
        for kind in REBALANCE_KINDS:
            self._child("kstream_rebalances_total", kind)
        self._child("kstream_ready").set(0)

    def _child(self, name: str, *labels: object):
        return self._m[name].labels(self.app_id, *(str(v) for v in labels))

    # -- records ---------------------------------------------------------------------

    def records_consumed(self, topic: str, n: int) -> None:
        self._child("kstream_records_consumed_total", topic).inc(n)

    def records_produced(self, topic: str, n: int) -> None:
        self._child("kstream_records_produced_total", topic).inc(n)

    def late_records(self, topic: str, n: int) -> None:
        self._child("kstream_late_records_total", topic).inc(n)

    def dlq(self, topic: str, reason: str, n: int = 1) -> None:
        self._child("kstream_dlq_records_total", topic, reason).inc(n)

    # -- batches and time ------------------------------------------------------------

    def batch_completed(
        self,
        batch_time: float,
        records: int,
        processing_seconds: float,
        scheduling_delay_seconds: float,
    ) -> None:
        self._child("kstream_batch_processing_seconds").observe(processing_seconds)
        self._child("kstream_batch_scheduling_delay_seconds").observe(scheduling_delay_seconds)
        self._child("kstream_batch_records").observe(records)
        self._child("kstream_last_batch_time_seconds").set(batch_time)

    def set_watermark(self, seconds: float) -> None:
        self._child("kstream_watermark_seconds").set(seconds)

    def set_batch_interval(self, seconds: float) -> None:
        self._batch_interval = float(seconds)
        self._child("kstream_batch_interval_seconds").set(seconds)

    @property
    def batch_interval(self) -> float | None:
        """The last value given to `set_batch_interval` (None before)."""
        return self._batch_interval

    # -- partitions ------------------------------------------------------------------

    def set_lag(self, topic: str, partition: int, lag: int) -> None:
        self._child("kstream_consumer_lag", topic, partition).set(lag)

    def forget_partition(self, topic: str, partition: int) -> None:
        """Drop the per-partition series of a partition this worker no longer owns."""
        # prometheus_client < 0.21 raises KeyError for an unknown series
        with contextlib.suppress(KeyError):
            self._m["kstream_consumer_lag"].remove(self.app_id, topic, str(partition))

    def rebalance(self, kind: str) -> None:
        if kind not in REBALANCE_KINDS:
            raise ValueError(f"rebalance kind must be one of {REBALANCE_KINDS}, not {kind!r}")
        self._child("kstream_rebalances_total", kind).inc()

    # -- state -----------------------------------------------------------------------

    def state_keys(self, store: str, n: int) -> None:
        self._child("kstream_state_keys", store).set(n)

    def restored(self, store: str, seconds: float, records: int) -> None:
        self._child("kstream_restore_seconds", store).set(seconds)
        self._child("kstream_restore_records_total", store).inc(records)

    # -- commits, errors, readiness --------------------------------------------------

    def committed(self, seconds: float) -> None:
        self._child("kstream_commits_total").inc()
        self._child("kstream_commit_seconds").observe(seconds)

    def error(self, kind: str, n: int = 1) -> None:
        self._child("kstream_errors_total", kind).inc(n)

    def set_ready(self, ready: bool) -> None:
        self._child("kstream_ready").set(1 if ready else 0)

    # -- exposition ------------------------------------------------------------------

    def exposition(self) -> bytes:
        """The registry in the Prometheus text format (content type `CONTENT_TYPE`)."""
        return generate_latest(self.registry)
