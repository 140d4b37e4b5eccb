"""kstream/delivery.py without a broker: its producers are stand-ins
(tests/unit/offline.py KafkaProducerStandIn) that call back as librdkafka does."""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError, Message

from kstream.delivery import AtLeastOnce, ExactlyOnce, SendFailedError, StepAbortedError

T = 10_000


def report(topic: str, key: bytes | None, value: bytes | None, t: int = T) -> Message:
    """A failed delivery report, as librdkafka gives one for a record the broker refused."""
    refused = KafkaError(KafkaError.MSG_SIZE_TOO_LARGE, "Broker: Message size too large")
    return Message(topic=topic, key=key, value=value, error=refused, timestamp=(1, t))


def test_refusals_in_delivery_reports_fail_the_flush_naming_the_topic(journal):
    d = AtLeastOnce("b", {}, lambda what: None)
    on_delivery = d.producer.config["on_delivery"]  # what librdkafka calls back
    refused = report("out", b"k", b"v")
    on_delivery(refused.error(), refused)
    purged = KafkaError(KafkaError._PURGE_QUEUE)
    on_delivery(purged, Message(topic="out", error=purged))  # an abort's, not a cause
    on_delivery(None, Message(topic="out"))
    assert d.refused == [refused]
    with pytest.raises(SendFailedError, match="first: out: Broker: Message size too large;"):
        d.finish(None, [])
    assert d.report is None  # failures come to the producer's own callback


def test_exactly_once_reports_each_output_only_in_the_redo_of_a_failed_step(journal):
    quiet = ExactlyOnce("b", {}, lambda what: None, "t-1")
    assert quiet.report is None  # no Python call per record: a refusal aborts the step

    careful = ExactlyOnce("b", {}, lambda what: None, "t-1", report_each=True)
    assert careful.report is not None
    careful.begin()
    refused = report("out", b"k", b"v")
    careful.report(refused.error(), refused)
    with pytest.raises(StepAbortedError, match="out: Broker: Message size too large"):
        careful.finish(None, [])
    assert careful.refused == [refused]
    calls = [call for _, call, _ in journal]
    assert calls[-2:] == ["abort_transaction", "poll"]  # reports served

    careful.begin()
    careful.finish(None, [])
    assert careful.report is None  # a step committed: back to no call per record
