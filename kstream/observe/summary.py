"""A periodic one-line INFO summary of the batches, for logs without a dashboard."""

from __future__ import annotations

import logging

from kstream.observe.timeline import Timeline, Totals


class SummaryLogger:
    """Call `maybe_log(timeline, now)` from the batch loop; every `every_seconds` it logs

    batches=30 records/s=12345.6 lag=0 max_delay=0.01s avg_processing=0.12s

    covering the batches completed since the previous line (the first call starts the
    first period). `now` is any monotonic clock in seconds.
    """

    def __init__(self, logger: logging.Logger, every_seconds: float = 30) -> None:
        if every_seconds <= 0:
            raise ValueError("every_seconds must be positive")
        self.logger = logger
        self.every_seconds = float(every_seconds)
        self._since: float | None = None
        self._totals = Totals(0, 0, 0.0)

    def maybe_log(self, timeline: Timeline, now: float) -> str | None:
        """Log and return the line if a period has ended, else return None."""
        if self._since is None:
            self._since, self._totals = now, timeline.totals()
            return None
        elapsed = now - self._since
        if elapsed < self.every_seconds:
            return None
        totals = timeline.totals()
        batches = totals.batches - self._totals.batches
        records = totals.records - self._totals.records
        processing = totals.processing_seconds - self._totals.processing_seconds
        delays = [
            b.scheduling_delay_seconds
            for b in timeline.batches_since(self._totals.batches)
            if b.scheduling_delay_seconds is not None
        ]
        line = (
            f"batches={batches} records/s={records / elapsed:.1f} "
            f"lag={timeline.total_lag()} max_delay={max(delays, default=0.0):.2f}s "
            f"avg_processing={processing / batches if batches else 0.0:.2f}s"
        )
        self.logger.info("%s", line)
        self._since, self._totals = now, totals
        return line
