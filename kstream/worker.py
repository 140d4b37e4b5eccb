"""The batch loop: poll, file records under their batches, run the due ones, checkpoint.

One step, top to bottom (docs/design.md §5):
  1. consume a bulk of records and file them under their batch (kstream/intake.py);
  2. for every stage, run each batch that is now due (kstream/runner.py) and write its
     outputs, repartition records and markers (kstream/checkpoint.py);
  3. make them durable and commit, per partition, the lowest offset not yet in a
     processed batch (flush-then-commit, or the transaction: kstream/delivery.py);
  4. only then write the batches' state changes to the local stores.

When Kafka fails the step for good (a send failed, the transaction aborted, the producer
fenced or unusable after a broker restart), nothing of it counts: the worker drops its
clients and in-memory batches and starts again from the committed offsets. Rebalances are
kstream/membership.py's; the checks and topics before the start, kstream/prepare.py's.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from confluent_kafka import Consumer, KafkaException

from kstream.checkpoint import Checkpoint
from kstream.clocks import TP
from kstream.codec import codecs
from kstream.delivery import (
    Delivery,
    FencedError,
    SendFailedError,
    StepAbortedError,
    fenced,
    open_delivery,
)
from kstream.errors import ConfigError, FormatError
from kstream.graph import require_output
from kstream.intake import Intake, consumer_failed
from kstream.kafka.admin import Admin
from kstream.kafka.config import consumer_config
from kstream.kafka.transactional_id import claim_transactional_id
from kstream.membership import Membership
from kstream.observe.observer import Observer
from kstream.plan import compile_plan
from kstream.poison import Poison
from kstream.prepare import build_stages, prepare_state, prepare_topics
from kstream.runner import BatchRunner
from kstream.stages import PoisonRecordError, StageRuntime
from kstream.state.tasks import TaskStores, check_state_dir

if TYPE_CHECKING:
    from kstream.app import App

log = logging.getLogger(__name__)

# Kafka failed a step for good: the worker starts over from its committed offsets
RESTARTABLE = (SendFailedError, StepAbortedError, KafkaException)
# A step takes due batches for this long at most, then commits them and polls again, so
# a backlog is checkpointed as it goes and stop requests and rebalances wait for one batch
STEP_SECONDS = 1.0
# The worker must not go on: a poison record under on_error="fail", a zombie, or a record
# or value its internal format does not read or write
WorkerStopped = (FencedError, PoisonRecordError, FormatError)


class Worker:
    """Runs every stage of an app as one member of the app's consumer group."""

    def __init__(
        self,
        app: App,
        brokers: str | None = None,
        group_instance_id: str | None = None,
        kafka: dict[str, Any] | None = None,
        max_poll_records: int = 20000,
        metrics_host: str = "0.0.0.0",
        metrics_port: int | None = None,
        metrics_port_search: bool = False,
        *,
        consumer_factory: Callable[[dict[str, Any]], Consumer] = Consumer,
        delivery_factory: Callable[..., Delivery] = open_delivery,
        admin_factory: Callable[[str, dict[str, Any]], Admin] = Admin,
    ):
        """The factories make the Kafka clients (tests pass stand-ins): the group member
        from its config, an incarnation's producers (as kstream.delivery.open_delivery),
        the topic admin from brokers and client settings."""
        self.app = app
        self.brokers = brokers or app.settings.brokers or "localhost:9092"
        self.kafka = {**app.settings.kafka, **(kafka or {})}
        self.group_instance_id = group_instance_id or app.settings.group_instance_id
        self.max_poll_records = max_poll_records
        self.consumer_factory = consumer_factory
        self.delivery_factory = delivery_factory
        self.admin_factory = admin_factory
        self.stopping = threading.Event()
        self.plan = compile_plan(app)
        self.stages: list[StageRuntime] = []  # filled in place: membership and intake read them
        self.topic_stage: dict[str, StageRuntime] = {}
        self.exchange_partitions: dict[str, int] = {}
        self.consumer: Consumer | None = None
        self.checkpoint: Checkpoint | None = None
        self.stores: TaskStores | None = None
        self.batches_done = self.restarts = 0
        self.restore_slice = 0.5  # seconds of restoring per iteration (others run between)
        self._failures = 0  # failed steps in a row (for the back-off)
        self._transactional_lock = None
        self.observer = Observer(
            app.app_id,
            app.batch_interval,
            metrics_host,
            metrics_port,
            self.plan.describe,
            port_search=metrics_port_search,
        )
        self.intake = Intake(self.stages, self.topic_stage, self.observer, app.settings.late)
        self._due_checked = self._due_since = time.time()
        self._left_due = False  # the last step stopped with batches still due
        internal = codecs()  # per repartition topic: its internal format
        self._exchange_codecs = {x.topic: internal[x.serde] for x in self.plan.exchanges}

    @property
    def delivery(self) -> Delivery | None:
        """The current incarnation's producers (the checkpoint writes through them)."""
        return self.checkpoint.delivery if self.checkpoint is not None else None

    # -- the loop --------------------------------------------------------------------
    def run(self, duration: float | None = None) -> None:
        """Check, start, loop until stop() or for `duration` seconds, then leave the group."""
        self.prepare()
        self.start()
        try:
            self.loop(duration)
        finally:
            self.close()

    def loop(self, duration: float | None = None) -> None:
        deadline = None if duration is None else time.monotonic() + duration
        while not self.stopping.is_set():
            if deadline is not None and time.monotonic() >= deadline:
                break
            try:
                self.step()
            except RESTARTABLE as e:
                if fenced(e) or getattr(self.delivery, "fenced", False):
                    raise FencedError(
                        f"another worker took over this worker's transactional id ({e}); "
                        "stopping this one"
                    ) from e
                self._restart(e)

    def stop(self) -> None:
        self.stopping.set()

    def step(self, poll_timeout: float = 0.1) -> int:
        """One iteration of the loop; returns how many batches it processed."""
        assert self.consumer is not None
        # no wait for records while due batches are left over from the previous step
        msgs = self.consumer.consume(self.max_poll_records, 0 if self._left_due else poll_timeout)
        self.observer.beat()
        if self.stores.restoring:
            self.membership.restore(self.consumer, self.restore_slice)
        now_ms = int(time.time() * 1000)
        self.intake.ingest(msgs, now_ms)
        self.intake.probe(self.consumer)
        # a batch found due now became due after the previous look (see run_batch), or
        # earlier if the previous step left due batches for this one
        if not self._left_due:
            self._due_since = self._due_checked
        self._due_checked = now_ms / 1000
        done = self._run_due(now_ms)
        if log.isEnabledFor(logging.DEBUG):
            self._log_stages(now_ms)
        if done:
            self.checkpoint.finish(self.consumer, self.stages)
            self.batches_done += done
            self._failures = 0
        self._report_progress()
        return done

    def _run_due(self, now_ms: int) -> int:
        """Process the due batches, stage by stage and one at a time: a stop request, or
        the end of the stage's time in this step, leaves the rest due (not closed) for the
        next step or the partitions' next owner. Returns how many ran."""
        done = 0
        self._left_due = False
        for stage in self.stages:
            until = time.monotonic() + STEP_SECONDS
            while True:
                if self.stopping.is_set() or (done and time.monotonic() >= until):
                    self._left_due = True
                    break
                runs = stage.due(now_ms, limit=1)
                if not runs:
                    break
                if not done:
                    self.checkpoint.begin()
                self.run_batch(stage, *runs[0])
                self.observer.beat()
                done += 1
        return done

    def run_batch(self, stage: StageRuntime, t: int, tps: tuple[TP, ...]) -> None:
        """Run batch t of a stage over partitions tps and write it into the step."""
        began = time.time()
        result = self.runner.run(stage, t, tps)
        self.checkpoint.write(stage, t, tps, result)
        if stage.stage.index == 0:
            # Scheduling delay: from when the batch could first have run to the start of
            # its job. That is the end of its interval plus the lateness, or, if later, the
            # previous look at due batches (it was not due then: its records had not come).
            could_run = max(t / 1000 + self.app.settings.allowed_lateness, self._due_since)
            self.observer.batch(t, result.count, time.time() - began, max(0.0, began - could_run))

    def _log_stages(self, now_ms: int) -> None:
        for stage in self.stages:
            log.debug(
                "stage %d: watermark=%s closed_through=%s partitions=%s open=%s",
                stage.stage.index,
                stage.watermark(now_ms),
                stage.closer.closed_through,
                {tp: task.closed_through for tp, task in stage.tasks.items()},
                stage.open_times()[:3],
            )

    def _report_progress(self) -> None:
        """Lag and watermark (kstream/intake.py) and the stores' sizes, once a second."""
        if self.consumer is not None and self.intake.report_lag(self.consumer):
            for store, keys in self.stores.sizes().items():
                self.observer.state_size(store, keys)

    # -- start, restart, close ---------------------------------------------------------
    def prepare(self) -> None:
        """Check brokers and topics and create internal topics; ConfigError if wrong."""
        require_output(self.app.nodes)
        if not self.app.uses_kafka():
            raise ConfigError("the app reads no Kafka topic: nothing for a worker to do")
        app_id, settings = self.app.app_id, self.app.settings
        transactional_id_file = settings.guarantee == "exactly-once" and not self.group_instance_id
        if self.plan.changelog_topics() or transactional_id_file:  # stores, or the id's file
            check_state_dir(settings.state_dir, app_id)
        admin = self.admin_factory(self.brokers, self.kafka)
        known, wanted = prepare_topics(app_id, self.plan, settings, admin)
        self.exchange_partitions = wanted
        self.dlq_topic = self.plan.dlq_topic
        self.poison = Poison(app_id, settings.on_error, self.dlq_topic, self.observer.metrics)
        self.stores = prepare_state(
            app_id,
            settings,
            self.plan,
            admin,
            known,
            wanted,
            self.brokers,
            self.kafka,
            self.observer.metrics.restored,
        )
        self.partitions = {**known, **wanted}
        self._build_stages()
        self.runner = BatchRunner(self.poison, self.stores)
        strategy = str(self.kafka.get("partition.assignment.strategy", "cooperative"))
        self.membership = Membership(
            self.topic_stage, self.stores, self.observer, self.stopping, "cooperative" in strategy
        )
        self.checkpoint = Checkpoint(
            app_id, self.plan, self.partitions, self._exchange_codecs, self.poison, self.observer
        )

    def _build_stages(self) -> None:
        """Fresh run-time stages, in the same list and dict (membership reads them)."""
        self.stages[:] = build_stages(
            self.plan,
            self.app.interval_ms,
            self.app.settings,
            self.partitions,
            self._exchange_codecs,
        )
        self.topic_stage.clear()
        for runtime in self.stages:
            for topic in runtime.stage.input_topics():
                self.topic_stage[topic] = runtime

    def start(self) -> None:
        # Everything built so far lives as long as the worker: keep it out of every
        # garbage collection, which otherwise rescans it while batches are buffered.
        gc.freeze()
        self.observer.start()
        self._due_checked = self._due_since = time.time()
        self.connect()
        log.info(
            "worker for %s started (%s): %d stage(s), reading %s%s",
            self.app.app_id,
            self.app.settings.guarantee,
            len(self.stages),
            ", ".join(self.topic_stage),
            f"; state stores within {self.app.settings.state_memory_mb} MB of RocksDB memory"
            if self.stores.nodes
            else "",
        )

    def connect(self) -> None:
        """The Kafka clients of one incarnation: producer(s), then the group member (the
        one kept over a restart, rewound to the committed offsets, or a new one). After
        prepare(): start() and each restart call it; tests, to run batches by hand."""
        self.observer.ready(False, "joining the consumer group")
        on_problem = lambda what: self.observer.metrics.error("produce")  # noqa: E731
        transactional_id = None
        if self.app.settings.guarantee == "exactly-once":
            if self._transactional_lock is None:
                self._transactional_id, self._transactional_lock = claim_transactional_id(
                    self.app.app_id, self.app.settings.state_dir, self.group_instance_id
                )
            transactional_id = self._transactional_id
        # after a failed step, an exactly-once delivery learns what Kafka refuses
        self.checkpoint.delivery = self.delivery_factory(
            self.brokers, self.kafka, on_problem, transactional_id, report_each=self._failures > 0
        )
        if self.consumer is not None:  # kept over a restart: rewound to the committed offsets
            consumer = self.consumer
            try:
                self.membership.rewind(consumer)
            except KafkaException:  # dropped: the next restart replaces it
                self.consumer = None
                consumer.close()
                raise
            return
        config = consumer_config(self.brokers, self.app.app_id, self.group_instance_id, self.kafka)
        # global errors (all brokers down, ...) come only through this callback, served
        # in consume(): without it they were dropped and readiness never saw them
        config["error_cb"] = self.intake.on_error
        self.consumer = self.consumer_factory(config)
        self.consumer.subscribe(
            list(self.topic_stage),
            on_assign=self.membership.on_assign,
            on_revoke=self.membership.on_revoke,
            on_lost=self.membership.on_lost,
        )

    def _disconnect(self, keep_consumer: bool) -> None:
        """Drop this incarnation: its producer(s), open batches and uncommitted state, and
        its group member unless `keep_consumer`. A kept member does not leave the group:
        no rebalance, and none that Tansu never completes (a member that leaves while it
        leads a forming generation stays its leader: workers restarting together, as after
        a broker restart, got no partitions back)."""
        self.checkpoint.abandon()
        if self.consumer is not None and not keep_consumer:
            self.consumer.close()  # its revocation callback closes the task stores
            self.consumer = None
        self.stores.close()

    def _restart(self, error: Exception) -> None:
        """Kafka failed a step for good: start over from the committed offsets, after a
        back-off that grows while failures follow each other."""
        while True:
            self._failures += 1
            self.restarts += 1
            delay = min(30.0, 2.0 ** (self._failures - 1))
            self.observer.metrics.error("restart")
            self.observer.ready(False, f"restarting after: {error}")
            log.error(
                "%s: %s; dropping uncommitted work and starting over from the committed "
                "offsets in %.0fs",
                type(error).__name__,
                error,
                delay,
            )
            self._disconnect(keep_consumer=not consumer_failed(error))
            if self.stopping.wait(delay):
                return
            self._build_stages()
            try:
                self.connect()
                return
            except RESTARTABLE as again:  # e.g. the broker is still away
                if fenced(again):
                    raise FencedError(f"fenced while starting over: {again}") from again
                error = again

    def close(self) -> None:
        self.stopping.set()
        self.observer.stop()
        if self.delivery is not None:
            self.delivery.close()  # an unfinished step's transaction is aborted
        if self.stores is not None:
            self.stores.close()
        if self.consumer is not None:
            self.consumer.close()  # leaves the group: its partitions move at once
            self.consumer = None
        if self._transactional_lock is not None:
            self._transactional_lock.close()
            self._transactional_lock = None
        log.info("worker for %s stopped after %d batches", self.app.app_id, self.batches_done)
