"""What the worker reports, in one place: fanned out to metrics, timeline, health, logs."""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections import Counter
from collections.abc import Callable

from kstream.errors import ConfigError
from kstream.observe.health import Health
from kstream.observe.metrics import Metrics
from kstream.observe.server import SEARCHED_PORTS, ObservabilityServer
from kstream.observe.summary import SummaryLogger
from kstream.observe.timeline import Timeline
from kstream.observe.watchdog import Watchdog

log = logging.getLogger("kstream.observe")
summary_log = logging.getLogger("kstream.summary")

SUMMARY_ENV = "KSTREAM_SUMMARY_SECONDS"
HUNG_ENV = "KSTREAM_HUNG_WARN_SECONDS"
LATE_WARN_EVERY = 10.0  # seconds between two warnings about late records


def seconds_from_env(name: str, default: float) -> float:
    """A positive number of seconds from an environment variable, else `default`."""
    raw = os.environ.get(name, str(default))
    try:
        seconds = float(raw)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds > 0):
        raise ConfigError(f"{name}={raw!r}: expected a positive number of seconds")
    return seconds


def summary_seconds() -> float:
    """The summary line's period: KSTREAM_SUMMARY_SECONDS, default 30."""
    return seconds_from_env(SUMMARY_ENV, 30)


class Observer:
    def __init__(
        self,
        app_id: str,
        interval_seconds: float,
        host: str = "0.0.0.0",
        port: int | None = None,
        topology: Callable[[], dict] | None = None,
        summary_every: float | None = None,
        port_search: bool = False,
    ):
        self.metrics = Metrics(app_id)
        self.metrics.set_batch_interval(interval_seconds)
        self.timeline = Timeline()
        # The loop beats every poll (0.1 s) unless a batch runs: allow long batches.
        self.health = Health(stall_after=max(60.0, 10 * interval_seconds))
        self.summary = SummaryLogger(summary_log, every_seconds=summary_every or summary_seconds())
        # a loop stuck this long (a hung user function?) is reported with where it is
        self.hung_after = seconds_from_env(HUNG_ENV, max(15.0, 5 * interval_seconds))
        self.watchdog: Watchdog | None = None
        self.interval = interval_seconds
        self.server = None  # port None or 0: no server
        if port:
            self.server = ObservabilityServer(
                host, port, self.metrics, self.timeline, self.health, topology, port_search
            )
            try:  # now, so that a port in use stops the worker before it touches Kafka
                self.server.bind()
            except OSError as e:
                ports = f"{port}-{port + SEARCHED_PORTS - 1}" if port_search else port
                raise ConfigError(
                    f"--metrics-port: cannot listen on {host}:{ports} ({e.strerror or e}); "
                    "choose another port, or 0 for none"
                ) from None
        self._unacknowledged: Counter[str] = Counter()  # produced, not yet flushed
        self._late: Counter[str] = Counter()  # late records not yet in a warning
        self._late_policy = ""
        self._late_warned = -math.inf

    def start(self) -> None:
        """From the thread that runs the batch loop (the watchdog watches that one)."""
        self.watchdog = Watchdog(self.health, self.hung_after, threading.get_ident())
        self.watchdog.start()
        if self.server is not None:
            self.server.start()
            log.info("metrics, health and the batch page on %s", self.server.url)

    def stop(self) -> None:
        self._warn_late(math.inf)
        self.health.set_ready(False, "stopping")
        self.metrics.set_ready(False)
        if self.watchdog is not None:
            self.watchdog.stop()
        if self.server is not None:
            self.server.stop()

    def beat(self) -> None:
        """Once per loop iteration: liveness, the periodic summary, pending warnings."""
        now = time.monotonic()
        self.health.beat()
        self.summary.maybe_log(self.timeline, now)
        if self._late:
            self._warn_late(now)

    def ready(self, ready: bool, reason: str = "") -> None:
        """Readiness for /readyz and kstream_ready; a change is logged."""
        was = self.health.ready()
        self.health.set_ready(ready, reason)
        self.metrics.set_ready(ready)
        if ready and not was:
            log.info("ready: %s", reason or "ok")
        elif was and not ready:
            log.info("not ready: %s", reason or "unknown")

    def batch(self, t_ms: int, records: int, processing: float, delay: float) -> None:
        self.metrics.batch_completed(t_ms / 1000, records, processing, delay)
        self.timeline.add(t_ms / 1000, records, processing, delay, records / self.interval)

    def produced(self, topic: str, n: int) -> None:
        """Outputs handed to the producer; counted once `acknowledged()` says so."""
        self._unacknowledged[topic] += n

    def acknowledged(self) -> None:
        """The producer was flushed without errors: every output so far is in Kafka."""
        for topic, n in self._unacknowledged.items():
            self.metrics.records_produced(topic, n)
        self._unacknowledged.clear()

    def late(self, topic: str, n: int, policy: str) -> None:
        """Records for batches already closed. Counted at once; warned about at most
        every LATE_WARN_EVERY seconds, summing what came in between."""
        self.metrics.late_records(topic, n)
        self._late[topic] += n
        self._late_policy = policy
        self._warn_late(time.monotonic())

    def _warn_late(self, now: float) -> None:
        if not self._late or now - self._late_warned < LATE_WARN_EVERY:
            return
        fate = "dropped" if self._late_policy == "drop" else "joined the oldest open batch"
        for topic, n in sorted(self._late.items()):
            log.warning("%d late record(s) on %s: %s (late=%s)", n, topic, fate, self._late_policy)
        self._late.clear()
        self._late_warned = now

    def watermark(self, ms: int | None) -> None:
        if ms is not None:
            self.metrics.set_watermark(ms / 1000)

    def lag(self, topic: str, partition: int, lag: int) -> None:
        self.metrics.set_lag(topic, partition, lag)
        self.timeline.set_lag(topic, partition, lag)

    def state_size(self, store: str, keys: int) -> None:
        self.metrics.state_keys(store, keys)
        self.timeline.set_state_size(store, keys)

    def forget(self, topic: str, partition: int) -> None:
        self.metrics.forget_partition(topic, partition)
        self.timeline.forget_partition(topic, partition)
