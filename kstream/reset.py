"""`kstream reset`: start an app over — its offsets, internal topics and local state — or
drop one operator's state only (`--operator NAME`).

Only what is this app's exactly is touched: its consumer groups by name, and the topics
that parse as its internal topics (kstream/names.py), never topics that merely share the
app id as a prefix (another app's)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from confluent_kafka import KafkaException

from kstream.dead_letters import dlq_topic
from kstream.errors import ConfigError
from kstream.kafka.admin import Admin
from kstream.names import parse_internal
from kstream.redrive import redrive_group

if TYPE_CHECKING:
    from kstream.app import App


@dataclass
class ResetPlan:
    """What a reset deletes, listed before anything is."""

    groups: list[str] = field(default_factory=list)
    topics: list[str] = field(default_factory=list)
    local: list[str] = field(default_factory=list)  # directories of local state

    def lines(self) -> list[str]:
        return (
            [f"the offsets of consumer group {g}" for g in self.groups]
            + [f"topic {t}" for t in self.topics]
            + [f"local state {d}" for d in self.local if os.path.isdir(d)]
        )


def plan_reset(app: App, admin: Admin, operator: str | None = None) -> ResetPlan:
    """The whole app's offsets, internal and dead-letter topics and local state; or, with
    `operator`, that operator's changelog and local stores only (its repartition topic
    holds records in flight, not state, and the offsets stay)."""
    known = admin.partitions()
    mine = {t: parse_internal(app.app_id, t) for t in known}
    local = os.path.join(app.settings.state_dir, app.app_id)
    if operator is not None:
        changelogs = [t for t, p in mine.items() if p == (operator, "changelog")]
        store = os.path.join(local, operator)
        if not changelogs and not os.path.isdir(store):
            have = sorted({p[0] for p in mine.values() if p and p[1] == "changelog"})
            raise ConfigError(
                f"--operator {operator}: {app.app_id} keeps no state under that name "
                f"(it has state of: {', '.join(have) or 'no operator'})"
            )
        return ResetPlan(topics=changelogs, local=[store])
    dlq = dlq_topic(app.app_id)
    topics = sorted(t for t, p in mine.items() if p is not None)
    return ResetPlan(
        groups=[app.app_id, redrive_group(app.app_id)],
        topics=topics + ([dlq] if dlq in known else []),
        local=[local],
    )


def reset_app(
    app: App, brokers: str | None, kafka: dict[str, Any], operator: str | None = None
) -> Iterator[str]:
    """Carry out the reset; yields one line per thing done. Stop the app's workers first.

    The dead-letter topic goes too (the input is read again from the start, so its poison
    records are dead-lettered again), with the redrive group's offsets: redrive what you
    want to keep first."""
    admin = Admin(brokers or app.settings.brokers or "localhost:9092", kafka)
    plan = plan_reset(app, admin, operator)
    for group in plan.groups:
        try:
            admin.client.delete_consumer_groups([group], request_timeout=30)[group].result(60)
            yield f"deleted the offsets of consumer group {group}"
        except KafkaException as e:
            if group == app.app_id:  # (a redrive group exists only if a redrive ran)
                yield f"consumer group {group}: {e.args[0].str() if e.args else e}"
    dlq = dlq_topic(app.app_id)
    for topic in admin.delete(plan.topics):
        yield f"deleted {'dead-letter' if topic == dlq else 'internal'} topic {topic}"
    for directory in plan.local:
        if os.path.isdir(directory):
            shutil.rmtree(directory)
            yield f"deleted local state {directory}"
