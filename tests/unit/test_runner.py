"""BatchRunner without a Kafka client: a stage's batch in; its values, input count and
poison records out (writing them is kstream/checkpoint.py's)."""

from __future__ import annotations

import kstream
from kstream.observe.metrics import Metrics
from kstream.plan import compile_plan
from kstream.poison import Poison
from kstream.prepare import build_stages
from kstream.runner import BatchRunner
from tests.unit.offline import msg

T = 10_000  # the batch (ms): records stamped 9_000 .. 9_999


def test_a_stateless_batch_runs_without_kafka_and_hands_back_its_poison_records(tmp_path):
    app = kstream.App("p", batch_interval=1.0, state_dir=str(tmp_path), on_error="dlq")
    app.stream("lines").map(int).to("out")
    plan = compile_plan(app)
    (stage,) = build_stages(plan, app.interval_ms, app.settings, {"lines": 1}, {})
    stage.assign([("lines", 0)])
    stage.ingest("lines", [msg("lines", 0, i, v) for i, v in enumerate([b"1", b"x", b"3"])], 0)
    poison = Poison("p", "dlq", plan.dlq_topic, Metrics("p"))
    result = BatchRunner(poison, stores=None).run(stage, T, (("lines", 0),))

    (sink,) = plan.stages[0].sinks
    assert list(result.values[sink]) == [1, 3]
    assert result.count == 3
    (letter,) = result.letters
    assert (letter.where(), letter.reason) == ("lines[0]@1", "function")
    assert result.stores == []
