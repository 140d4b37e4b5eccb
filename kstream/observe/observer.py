"""What the worker reports, in one place: fanned out to metrics, timeline, health, logs."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from kstream.observe.health import Health
from kstream.observe.metrics import Metrics
from kstream.observe.server import ObservabilityServer
from kstream.observe.summary import SummaryLogger
from kstream.observe.timeline import Timeline

log = logging.getLogger("kstream.summary")


class Observer:
    def __init__(
        self,
        app_id: str,
        interval_seconds: float,
        host: str = "0.0.0.0",
        port: int | None = None,
        topology: Callable[[], dict] | None = None,
        summary_every: float = 30.0,
    ):
        self.metrics = Metrics(app_id)
        self.metrics.set_batch_interval(interval_seconds)
        self.timeline = Timeline()
        # The loop beats every poll (0.1 s) unless a batch runs: allow long batches.
        self.health = Health(stall_after=max(60.0, 10 * interval_seconds))
        self.summary = SummaryLogger(log, every_seconds=summary_every)
        self.interval = interval_seconds
        self.server = (
            ObservabilityServer(host, port, self.metrics, self.timeline, self.health, topology)
            if port
            else None
        )

    def start(self) -> None:
        if self.server is not None:
            self.server.start()
            log.info("metrics, health and the batch page on %s", self.server.url)

    def stop(self) -> None:
        self.ready(False, "stopping")
        if self.server is not None:
            self.server.stop()

    def beat(self) -> None:
        self.health.beat()
        self.summary.maybe_log(self.timeline, time.monotonic())

    def ready(self, ready: bool, reason: str = "") -> None:
        if ready != self.health.ready():
            self.health.set_ready(ready, reason)
            self.metrics.set_ready(ready)

    def batch(self, t_ms: int, records: int, processing: float, delay: float) -> None:
        self.metrics.batch_completed(t_ms / 1000, records, processing, delay)
        self.timeline.add(t_ms / 1000, records, processing, delay, records / self.interval)

    def lag(self, topic: str, partition: int, lag: int) -> None:
        self.metrics.set_lag(topic, partition, lag)
        self.timeline.set_lag(topic, partition, lag)

    def forget(self, topic: str, partition: int) -> None:
        self.metrics.forget_partition(topic, partition)
        self.timeline.forget_partition(topic, partition)
