"""Output topics at start: a missing one stops the worker naming it, unless the app
creates its output topics (create_topics=True)."""

from __future__ import annotations

import pytest

import kstream
from kstream.errors import ConfigError
from kstream.kafka.admin import Admin
from kstream.worker import Worker


def two_outputs(app_id: str, bootstrap: str, source: str, outputs: list[str], tmp_path, **kw):
    app = kstream.App(app_id, brokers=bootstrap, state_dir=str(tmp_path), **kw)
    lines = app.stream(source)
    for topic in outputs:
        lines.to(topic)
    return app


def test_a_missing_output_topic_is_a_start_error_naming_it(bootstrap, topics, app_id, tmp_path):
    source, present = topics("lines", 2), topics("out")
    missing = f"missing-{app_id}"
    app = two_outputs(app_id, bootstrap, source, [present, missing], tmp_path)
    with pytest.raises(ConfigError) as refused:
        Worker(app).prepare()
    message = str(refused.value)
    assert f"output topic {missing!r} does not exist" in message
    assert present not in message and "create_topics=True" in message
    assert "\n" not in message
    assert missing not in Admin(bootstrap, {}).partitions()


def test_create_topics_creates_the_missing_output_topics(bootstrap, topics, app_id, tmp_path):
    source, present = topics("lines", 3), topics("out", 1)
    missing = [f"made-{app_id}", f"made2-{app_id}"]
    app = two_outputs(app_id, bootstrap, source, [present, *missing], tmp_path, create_topics=True)
    Worker(app).prepare()
    known = Admin(bootstrap, {}).partitions()
    # as many partitions as the source (the size of the app's internal topics)
    assert [known.get(t) for t in missing] == [3, 3]
    assert known[present] == 1  # an existing output is left as it is

    app = two_outputs(
        f"{app_id}-b",
        bootstrap,
        source,
        [f"sized-{app_id}"],
        tmp_path,
        create_topics=True,
        repartition_partitions=2,
    )
    Worker(app).prepare()
    assert Admin(bootstrap, {}).partitions()[f"sized-{app_id}"] == 2
