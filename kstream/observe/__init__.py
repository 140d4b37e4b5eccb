"""Observability: Prometheus metrics, health, the batch timeline and its live page.

The worker owns one of each and calls them from the batch loop:

    metrics = Metrics(app_id)            # every kstream_* metric
    timeline = Timeline()                # last N batches, lag, state sizes (for the page)
    health = Health(stall_after=...)     # beat() each loop iteration; set_ready(...)
    server = ObservabilityServer(host, port, metrics, timeline, health, topology).start()
    summary = SummaryLogger(log)         # summary.maybe_log(timeline, time.monotonic())
"""

from kstream.observe.health import Health
from kstream.observe.metrics import CATALOGUE, Metrics, MetricSpec
from kstream.observe.server import ObservabilityServer
from kstream.observe.summary import SummaryLogger
from kstream.observe.timeline import Batch, Timeline, Totals

__all__ = [
    "CATALOGUE",
    "Batch",
    "Health",
    "MetricSpec",
    "Metrics",
    "ObservabilityServer",
    "SummaryLogger",
    "Timeline",
    "Totals",
]
