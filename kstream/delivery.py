"""How a step's outputs reach Kafka and its input offsets get committed (docs/design.md §5).

At-least-once: produce, flush until every record is acknowledged, then commit the input
offsets; a crash in between replays the step (duplicates, nothing lost).

Exactly-once: one transactional producer per worker; the step's outputs, repartition
records and markers, changelog records and its input offsets form one transaction. A
worker that lost its partitions (a zombie) is fenced: the group generation travels with
the offsets, and a restarted worker's transactional id fences its previous incarnation.

Either way, `finish` returns only once the step is durable; the local stores may then
follow (so they are never ahead of the changelog).

A record Kafka refuses for good (`refused`: too large, invalid, its topic not writable or
gone) is refused either at produce() (RefusedError: librdkafka's own checks, e.g. a record
above message.max.bytes, which never enters the transaction) or in a delivery report, once
the broker has answered. A report fails the step like any failed send (under exactly-once
the transaction must be aborted anyway) and the delivery keeps the refused records in
`refused`, so that the redo of the step can leave them out (kstream/checkpoint.py).
Exactly-once asks for no report per record (a Python call each, on the hot path) except in
the redo of a failed step (`report_each`): that is how it learns which records to leave out.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from kstream.kafka.config import producer_config
from kstream.kafka.error_codes import FENCED, PURGED, RETRIABLE_COMMIT, refused

# makes a confluent_kafka.Producer from its config (tests wrap the real one)
ProducerFactory = Callable[[dict[str, Any]], Producer]

log = logging.getLogger(__name__)


class SendFailedError(RuntimeError):
    """Kafka did not take a record: nothing of its step is committed."""


class RefusedError(SendFailedError):
    """Kafka refused a record for good at produce(): an output's is a poison record."""

    def __init__(self, topic: str, error: KafkaError):
        super().__init__(f"{topic}: {error.str()}")
        self.topic = topic
        self.error = error


class StepAbortedError(RuntimeError):
    """The step's transaction was aborted: none of its outputs or offsets count."""


class WedgedError(StepAbortedError):
    """A transactional call did not return within its timeout (librdkafka does not always
    honour it: confluentinc/librdkafka#5456, a group coordinator lost mid-transaction).
    The producer is left to its stuck call; the worker starts over with a new one."""


class FencedError(RuntimeError):
    """Another worker took over this worker's transactional id: this one is a zombie and
    must stop (restarting would fence the other in turn)."""


def fenced(error: BaseException | None) -> bool:
    """Whether an error (or one it was raised from) says this producer was fenced."""
    while error is not None:
        if isinstance(error, KafkaException) and error.args[0].code() in FENCED:
            return True
        error = error.__cause__
    return False


class Delivery:
    """The producers of one worker incarnation and the commit protocol they follow."""

    producer: Producer  # outputs, repartition records, markers, dead letters
    # the delivery callback to give outputs and dead letters (None: the producer's default)
    report: Callable[[Any, Any], None] | None = None

    def __init__(self, on_problem: Callable[[str], None]):
        self.on_problem = on_problem  # a log line's worth, e.g. for a metric
        self.send_errors: list[str] = []
        self.refused: list[Message] = []  # reported refused for good (`refused`)
        self.changelog_next: dict[tuple[str, int], int] = {}

    def begin(self) -> None:
        """Before the first record of a step."""

    def send_changelog(
        self,
        topic: str,
        partition: int,
        key: bytes,
        value: bytes | None,
        headers: list[tuple[str, bytes]],
    ) -> None:
        raise NotImplementedError

    def finish(self, consumer: Consumer, offsets: list[TopicPartition]) -> None:
        raise NotImplementedError

    def abandon(self) -> None:
        """The step will not finish (the worker restarts): drop what is in flight."""

    def close(self) -> None:
        raise NotImplementedError

    def _on_changelog_sent(self, err: Any, msg: Any) -> None:
        if err is not None:
            self.send_errors.append(f"{msg.topic()}: {err.str()}")
            return
        key = (msg.topic(), msg.partition())
        self.changelog_next[key] = max(self.changelog_next.get(key, 0), msg.offset() + 1)

    def _on_send_error(self, err: Any, msg: Any) -> None:
        if err is None or err.code() in PURGED:
            return
        if refused(err):
            self.refused.append(msg)
        self.send_errors.append(f"{msg.topic()}: {err.str()}")

    def _flush(self, producers: list[Producer]) -> None:
        """Wait until every produced record is acknowledged (or has failed for good)."""
        waited = 0.0
        while (left := sum(p.flush(5.0) for p in producers)) > 0:
            waited += 5.0
            log.warning("waiting for Kafka to acknowledge %d outputs (%.0fs so far)", left, waited)
        if self.send_errors:
            errors, self.send_errors = self.send_errors, []
            self.on_problem(f"{len(errors)} failed sends")
            refused = f"; {len(self.refused)} refused for good" if self.refused else ""
            raise SendFailedError(
                f"{len(errors)} output(s) could not be written, first: {errors[0]}; "
                f"offsets of their batches are not committed{refused}"
            )


def produce_retrying(
    producer: Producer,
    topic: str,
    value: Any = None,
    key: Any = None,
    partition: int = -1,
    timestamp: int = 0,
    headers: list[tuple[str, bytes]] | None = None,
    on_delivery: Callable[[Any, Any], None] | None = None,
) -> None:
    """produce(), waiting for room in a full local queue. A record it refuses raises
    RefusedError if Kafka never takes such a record, else SendFailedError; both name the
    topic. (No *args: on the hot path, packing them cost a third of the call.)"""
    while True:
        try:
            producer.produce(
                topic,
                value,
                key,
                partition,
                timestamp=timestamp,
                headers=headers,
                on_delivery=on_delivery,
            )
            return
        except BufferError:
            producer.poll(0.05)
        except KafkaException as e:
            err = e.args[0]
            if refused(err):
                raise RefusedError(topic, err) from e
            raise SendFailedError(f"{topic}: {err.str()}") from e


class AtLeastOnce(Delivery):
    def __init__(
        self,
        brokers: str,
        kafka: dict[str, Any],
        on_problem: Callable[[str], None],
        producer_factory: ProducerFactory | None = None,
    ):
        super().__init__(on_problem)
        make = producer_factory or Producer
        self.producer = make(producer_config(brokers, self._on_send_error, kafka))
        # Changelog records need their offsets (stored with the state): full reports
        self.changelog_producer = make(
            {
                **producer_config(brokers, self._on_changelog_sent, kafka),
                "delivery.report.only.error": False,
            }
        )

    def send_changelog(self, topic, partition, key, value, headers):
        produce_retrying(self.changelog_producer, topic, value, key, partition, headers=headers)

    def finish(self, consumer, offsets):
        self._flush([self.producer, self.changelog_producer])
        if not offsets:
            return
        try:
            consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as e:
            err = e.args[0]
            if err.code() not in RETRIABLE_COMMIT:
                raise
            log.warning("commit skipped during a rebalance (%s); the next one catches up", err)

    def abandon(self) -> None:
        """Drop what the producers still hold. A producer in a fatal state (e.g. its
        sequence numbers lost by a restarted broker) raises that from flush: it is being
        dropped for it, so that is no reason to stop the worker."""
        for p in (self.producer, self.changelog_producer):
            try:
                p.purge()
                p.flush(0)
            except KafkaException as e:
                log.info("dropping a producer in error: %s", e.args[0].str())
        self.send_errors.clear()

    def close(self) -> None:
        self.producer.flush(30)
        self.changelog_producer.flush(30)


class ExactlyOnce(Delivery):
    def __init__(
        self,
        brokers: str,
        kafka: dict[str, Any],
        on_problem: Callable[[str], None],
        transactional_id: str,
        timeout: float = 10.0,  # per transactional call; a healthy one takes milliseconds
        report_each: bool = False,  # the redo of a failed step: learn which records Kafka refuses
        producer_factory: ProducerFactory | None = None,
    ):
        super().__init__(on_problem)
        self.timeout = timeout
        config = producer_config(brokers, self._on_send_error, kafka)
        # Failed sends surface as a failed commit: no Python call per record. Only
        # changelog records carry a callback of their own (their offsets are needed), and
        # outputs and dead letters do in the redo of a failed step, until a step commits.
        del config["on_delivery"]
        self.report = self._on_send_error if report_each else None
        # A step's transaction lasts a batch or so: as Kafka Streams does, let the broker
        # abort one whose producer is gone after 10 s rather than 60 s, for read_committed
        # readers wait that long (unless the worker's -X says otherwise).
        config.setdefault("transaction.timeout.ms", 10_000)
        config.update(
            {
                "transactional.id": transactional_id,
                "delivery.report.only.error": False,
                "error_cb": self._on_error,
            }
        )
        self.fatal: KafkaError | None = None
        self.producer = (producer_factory or Producer)(config)
        self.in_transaction = False
        self.wedged = False  # a call of ours never returned: the producer is unusable
        self._call("init_transactions")  # fences the previous holder of this id
        log.info("exactly-once: transactional id %s", transactional_id)

    def _on_error(self, err: KafkaError) -> None:
        if err.fatal():
            self.fatal = err
        log.warning("producer: %s", err.str())

    @property
    def fenced(self) -> bool:
        return self.fatal is not None and self.fatal.code() in FENCED

    def begin(self) -> None:
        if not self.in_transaction:
            self._call("begin_transaction", timed=False)
            self.in_transaction = True

    def send_changelog(self, topic, partition, key, value, headers):
        produce_retrying(
            self.producer,
            topic,
            value,
            key,
            partition,
            on_delivery=self._on_changelog_sent,
            headers=headers,
        )

    def finish(self, consumer, offsets):
        if not self.in_transaction:
            return
        try:
            self._flush([self.producer])
            if offsets:
                self._call(
                    "send_offsets_to_transaction", offsets, consumer.consumer_group_metadata()
                )
            self._call("commit_transaction")
        except (KafkaException, SendFailedError) as e:
            self.abandon()
            raise StepAbortedError(f"transaction aborted: {e}") from e
        finally:
            self.in_transaction = False
        self.report = None

    def abandon(self) -> None:
        if self.in_transaction and not self.wedged:
            self.in_transaction = False
            try:
                self.producer.abort_transaction(self.timeout)
            except KafkaException as e:  # fenced or fatal: the transaction dies with us
                log.warning("could not abort the transaction: %s", e.args[0])
            self.producer.poll(0)  # the reports of its records, refused ones among them
        self.send_errors.clear()

    def close(self) -> None:
        if self.wedged:
            return  # its transaction times out on the broker, or the next holder aborts it
        self.abandon()
        self.producer.flush(self.timeout)

    def _call(self, name: str, *args: Any, timed: bool = True) -> None:
        """A transactional call, retried while Kafka says the error is retriable."""
        deadline = time.monotonic() + self.timeout
        if timed:
            args = (*args, self.timeout)
        while True:
            try:
                self._bounded(name, getattr(self.producer, name), args)
                return
            except KafkaException as e:
                err = e.args[0]
                if not err.retriable() or time.monotonic() > deadline:
                    raise
                log.info("%s: %s; retrying", name, err.str())
                time.sleep(0.2)

    def _bounded(self, name: str, call: Callable[..., Any], args: tuple) -> None:
        """call(*args) in a thread of its own, waited for at most the timeout and a
        margin: a call that outlives it wedges this producer (WedgedError)."""
        outcome: list[BaseException | None] = []

        def run() -> None:
            try:
                call(*args)
                outcome.append(None)
            except BaseException as e:  # handed to the caller's thread
                outcome.append(e)

        thread = threading.Thread(target=run, name=f"kstream-{name}", daemon=True)
        thread.start()
        thread.join(self.timeout + 5.0)
        if not outcome:
            self.wedged = True
            raise WedgedError(
                f"{name} did not return within {self.timeout + 5.0:.0f}s (librdkafka#5456): "
                "dropping this producer"
            )
        if outcome[0] is not None:
            raise outcome[0]


def open_delivery(
    brokers: str,
    kafka: dict[str, Any],
    on_problem: Callable[[str], None],
    transactional_id: str | None,
    report_each: bool = False,
    producer_factory: ProducerFactory | None = None,
) -> Delivery:
    """The producers of one worker incarnation: transactional when there is an id. They
    come from `producer_factory` (default: confluent_kafka.Producer)."""
    if transactional_id is None:
        return AtLeastOnce(brokers, kafka, on_problem, producer_factory)
    return ExactlyOnce(
        brokers,
        kafka,
        on_problem,
        transactional_id,
        report_each=report_each,
        producer_factory=producer_factory,
    )
