"""What a worker checks before it runs: here, repartition topics its pipeline left behind."""

from __future__ import annotations

import logging
import operator

import kstream
from kstream.plan import compile_plan
from kstream.prepare import prepare_topics
from tests.unit.offline import FakeAdmin


def running_count() -> kstream.App:
    app = kstream.App("wc", batch_interval=1.0)
    words = app.stream("lines").map(lambda w: (w, 1))
    words.reduce_by_key(operator.add, name="counts").update_state_by_key(
        lambda vs, s: sum(vs) + (s or 0), name="totals"
    ).to("out")
    return app


def test_a_repartition_topic_the_pipeline_no_longer_reads_is_named_in_a_warning(caplog):
    app = running_count()
    plan = compile_plan(app)
    # the version before read "totals" through a second shuffle; it is now in the first stage's
    left = "wc--totals--repartition"
    admin = FakeAdmin({"lines": 2, "out": 2, "wc--counts--repartition": 2, left: 2})
    with caplog.at_level(logging.WARNING, logger="kstream.prepare"):
        _, wanted = prepare_topics(app.app_id, plan, app.settings, admin)
    assert list(wanted) == ["wc--counts--repartition"]
    (line,) = [r.getMessage() for r in caplog.records]
    assert left in line and "no longer read" in line


def test_no_warning_when_every_repartition_topic_is_read(caplog):
    app = running_count()
    admin = FakeAdmin(
        {"lines": 2, "out": 2, "wc--counts--repartition": 2, "other--x--repartition": 2}
    )
    with caplog.at_level(logging.WARNING, logger="kstream.prepare"):
        prepare_topics(app.app_id, compile_plan(app), app.settings, admin)
    assert caplog.records == []
