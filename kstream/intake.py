"""The worker's reading side: records from its group member into their stages, what the
member says about the broker (errors, whether it is reachable), and how far behind the
reading is (lag, watermark).
"""

from __future__ import annotations

import logging
import time
from itertools import groupby
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from kstream.observe.observer import Observer
from kstream.stages import StageRuntime

log = logging.getLogger(__name__)
_error = Message.error
_topic = Message.topic

BROKER_PROBE_EVERY = 5.0  # seconds between metadata requests of an idle worker cut off
UNREACHABLE = "broker unreachable"


def consumer_failed(error: BaseException) -> bool:
    """Whether a restart must replace the group member too: a fatal error (e.g. its static
    member id fenced). Other failures keep it, rewound to the committed offsets."""
    err = error.args[0] if isinstance(error, KafkaException) and error.args else None
    return isinstance(err, KafkaError) and err.fatal()


class Intake:
    """Files consumed records under their stages (`stages` and `topic_stage`, filled in
    place by the worker) and keeps readiness in step with the broker's reachability."""

    def __init__(
        self,
        stages: list[StageRuntime],
        topic_stage: dict[str, StageRuntime],
        observer: Observer,
        late: str,
    ):
        self.stages = stages
        self.topic_stage = topic_stage
        self.observer = observer
        self.late = late  # the app's policy for late records, for the reports
        self.probe_at: float | None = None  # when to ask whether the broker is back
        self._lag_checked = 0.0

    def ingest(self, msgs: list[Any], now_ms: int) -> None:
        """A bulk of consumed messages: records to their stages, then the end-of-partition
        events and errors among them."""
        ends = []
        if any(map(_error, msgs)):  # end-of-partition events (usually) or errors: rare
            ends = [m for m in msgs if m.error() is not None]
            msgs = [m for m in msgs if m.error() is None]
            for m in ends:
                self.on_error(m.error())
        runs = [(topic, list(group)) for topic, group in groupby(msgs, _topic)]
        if msgs and not self.observer.health.ready() and self.stages[0].assigned:
            self.observer.ready(True, "assigned and reading")
        for topic, topic_msgs in runs:
            stage = self.topic_stage[topic]
            late = stage.late
            stage.ingest(topic, topic_msgs, now_ms)
            if stage.stage.index == 0:
                self.observer.metrics.records_consumed(topic, len(topic_msgs))
            if stage.late > late:
                self.observer.late(topic, stage.late - late, self.late)
        for m in ends:  # after the records that came before them
            stage = self.topic_stage.get(m.topic())
            if stage is not None and m.error().code() == KafkaError._PARTITION_EOF:
                stage.reached_end((m.topic(), m.partition()), m.offset())

    def on_error(self, err: KafkaError) -> None:
        """The member's errors (its error_cb: global ones, all brokers down, come only
        there). A fatal one raises; losing the broker makes the worker not ready."""
        if err.code() == KafkaError._PARTITION_EOF:
            return
        if err.fatal():
            raise KafkaException(err)
        self.observer.metrics.error("consumer")
        if err.code() in (KafkaError._ALL_BROKERS_DOWN, KafkaError._TRANSPORT):
            self.observer.ready(False, f"{UNREACHABLE}: {err.str()}")
            self.probe_at = time.monotonic() + BROKER_PROBE_EVERY
        log.warning("consumer: %s", err.str())

    def probe(self, consumer: Consumer) -> None:
        """Not ready since the broker went away: records coming again say it is back
        (`ingest`), but an idle worker gets none, so it asks for metadata when due."""
        if self.probe_at is None or time.monotonic() < self.probe_at:
            return
        self.probe_at = None
        if not self.observer.health.readiness()["reason"].startswith(UNREACHABLE):
            return  # ready again, or not ready for another reason
        try:
            consumer.list_topics(timeout=1.0)
        except KafkaException:
            self.probe_at = time.monotonic() + BROKER_PROBE_EVERY
            return
        self.observer.ready(True, "the broker is reachable again")

    def report_lag(self, consumer: Consumer) -> bool:
        """Lag per partition (from the fetch's cached high watermark, see
        docs/test-broker.md) and the watermark, once a second; whether it reported."""
        now = time.monotonic()
        if now - self._lag_checked < 1.0:
            return False
        self._lag_checked = now
        for stage in self.stages:
            for (topic, p), position in stage.positions().items():
                try:
                    _, high = consumer.get_watermark_offsets(TopicPartition(topic, p), cached=True)
                except KafkaException:
                    continue
                if high >= 0:
                    self.observer.lag(topic, p, max(0, high - position))
        self.observer.watermark(self.stages[0].watermark(int(time.time() * 1000)))
        return True
