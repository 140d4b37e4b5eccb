"""What a worker checks and creates before it runs: topics, state stores, run-time stages.

Source and output topics must exist (outputs are created under create_topics=True);
repartition, changelog and dead-letter topics are created as needed. A worker refuses to
run over state that operators its pipeline no longer has left behind, and warns of a
repartition topic its pipeline no longer reads.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from kstream.codec import Codec
from kstream.codec import codecs as codecs_by_serde
from kstream.errors import ConfigError
from kstream.kafka.admin import Admin
from kstream.names import parse_internal
from kstream.plan import Plan
from kstream.settings import Settings
from kstream.stages import ExchangeStage, SourceStage, StageRuntime, upstream_tasks
from kstream.state.changelog import changelog_topic
from kstream.state.tasks import TaskStores, store_shape

log = logging.getLogger(__name__)


def prepare_topics(
    app_id: str, plan: Plan, settings: Settings, admin: Admin
) -> tuple[dict[str, int], dict[str, int]]:
    """Check sources and outputs and create what is missing. Returns the partitions of
    the topics known, and those of the repartition topics."""
    known = admin.partitions()
    admin.require(plan.source_topics(), "source", known)
    default_n = settings.repartition_partitions or max(known[t] for t in plan.source_topics())
    outputs = plan.output_topics()
    if settings.create_topics:
        missing = {t: default_n for t in outputs if t not in known}
        admin.ensure(missing, known, settings.replication_factor, {})
        known.update(missing)
    else:
        admin.require(outputs, "output", known, "create it first, or set create_topics=True")
    wanted = {x.topic: x.shuffle.partitions or default_n for x in plan.exchanges}
    warn_unread(app_id, known, wanted)
    admin.ensure(wanted, known, settings.replication_factor, {})
    if plan.dlq_topic is not None and plan.dlq_topic not in known:  # any size will do
        admin.ensure({plan.dlq_topic: 1}, known, settings.replication_factor, {})
    return known, wanted


def warn_unread(app_id: str, known: dict[str, int], wanted: dict[str, int]) -> None:
    """A repartition topic of this app that its pipeline no longer reads: a shuffle was
    removed (by a change to the pipeline, or because kstream now sees the data is
    partitioned by key already). What the previous version had not processed of it is
    not processed now; the worker says so, once, at the start."""
    for topic in sorted(known):
        internal = parse_internal(app_id, topic)
        if internal and internal[1] == "repartition" and topic not in wanted:
            log.warning(
                "repartition topic %s is no longer read by this pipeline (its shuffle is "
                "gone): records the previous version left in it are not processed. Let "
                "the previous version catch up (lag 0) before such an upgrade; then delete "
                "the topic",
                topic,
            )


def prepare_state(
    app_id: str,
    settings: Settings,
    plan: Plan,
    admin: Admin,
    known: dict[str, int],
    wanted: dict[str, int],
    brokers: str,
    kafka: dict[str, Any],
    restored: Callable[[str, float, int], None],
) -> TaskStores:
    """Stores for the stateful operators (restored from their changelogs on `brokers`,
    `restored` counting the records) and their changelog topics. A store's format is its
    operator's serde (else the app's internal_serde), as is its repartition topic's."""
    by_topic = {x.topic: x.stateful for x in plan.exchanges if x.stateful}
    formats = codecs_by_serde()
    stores = TaskStores(
        app_id,
        settings.state_dir,
        by_topic,
        {n: store_shape(n) for ns in by_topic.values() for n in ns},
        {n: formats[n.op.serde or settings.internal_serde] for ns in by_topic.values() for n in ns},
        brokers,
        kafka,
        restored,
        wanted,
        settings.state_memory_mb,
    )
    changelogs = {
        t: wanted[x]
        for x, ns in by_topic.items()
        for t in (changelog_topic(app_id, n.name) for n in ns)
    }
    orphans = []  # state of operators the pipeline no longer has
    for topic in known:
        internal = parse_internal(app_id, topic)
        if internal and internal[1] == "changelog" and topic not in changelogs:
            orphans.append(internal[0])
    if orphans:
        raise ConfigError(
            f"this app keeps state of operators its pipeline no longer has "
            f"({', '.join(sorted(orphans))}): name the operator that should keep it "
            f"so (name=...), or drop it with `kstream reset APP --operator "
            f"{sorted(orphans)[0]}`"
        )
    admin.ensure(changelogs, known, settings.replication_factor, {"cleanup.policy": "compact"})
    return stores


def build_stages(
    plan: Plan,
    interval_ms: int,
    settings: Settings,
    partitions: dict[str, int],
    codecs: dict[str, Codec],
) -> list[StageRuntime]:
    """Fresh run-time stages: no partitions, no open batches."""
    drain = max((getattr(n.op, "drain_ms", 0) for s in plan.stages for n in s.nodes), default=0)
    stages: list[StageRuntime] = []
    for stage in plan.stages:
        if stage.index == 0:
            stages.append(SourceStage(stage, interval_ms, settings, drain))
            continue
        n = upstream_tasks(plan.stages[stage.index - 1], partitions)
        stages.append(
            ExchangeStage(
                stage,
                interval_ms,
                settings,
                {x.topic: n for x in stage.reads},
                {x.topic: codecs[x.topic] for x in stage.reads},
            )
        )
    return stages
