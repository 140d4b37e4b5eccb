"""`kstream reset`: start an app over — its offsets, internal topics and local state."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from confluent_kafka import KafkaException

from kstream.kafka.admin import Admin
from kstream.plan import compile_plan
from kstream.poison import dlq_topic
from kstream.redrive import redrive_group

if TYPE_CHECKING:
    from kstream.app import App


def reset_app(app: App, brokers: str | None, kafka: dict[str, Any]) -> Iterator[str]:
    """Delete what the app keeps; yields one line per thing done. Stop its workers first.

    The dead-letter topic goes too (the input is read again from the start, so its poison
    records are dead-lettered again), with the redrive group's offsets: redrive what you
    want to keep first."""
    admin = Admin(brokers or app.settings.brokers or "localhost:9092", kafka)
    known = admin.partitions()
    try:
        admin.client.delete_consumer_groups([app.app_id], request_timeout=30)[app.app_id].result(60)
        yield f"deleted the offsets of consumer group {app.app_id}"
    except KafkaException as e:
        yield f"consumer group {app.app_id}: {e.args[0].str() if e.args else e}"
    prefix = f"{app.app_id}-"
    plan_topics = {x.topic for x in compile_plan(app).exchanges}
    internal = sorted(  # this pipeline's topics, and changelogs of any earlier version
        t for t in known if t in plan_topics or (t.startswith(prefix) and t.endswith("-changelog"))
    )
    dlq = dlq_topic(app.app_id)
    for topic in admin.delete(internal + ([dlq] if dlq in known else [])):
        yield f"deleted {'dead-letter' if topic == dlq else 'internal'} topic {topic}"
    group = redrive_group(app.app_id)
    try:
        admin.client.delete_consumer_groups([group], request_timeout=30)[group].result(60)
        yield f"deleted the offsets of consumer group {group}"
    except KafkaException:
        pass  # no redrive ran
    local = os.path.join(app.settings.state_dir, app.app_id)
    if os.path.isdir(local):
        shutil.rmtree(local)
        yield f"deleted local state {local}"
