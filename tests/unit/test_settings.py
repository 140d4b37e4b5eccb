"""Bad configuration fails at once with a ConfigError that names what is wrong."""

from __future__ import annotations

import pytest

import kstream
from kstream.errors import ConfigError


def test_config_error_is_a_value_error():
    assert kstream.ConfigError is ConfigError
    assert issubclass(ConfigError, ValueError)


@pytest.mark.parametrize(
    ("interval", "ms"),
    [(1.0, 1000), (1, 1000), (0.5, 500), (0.1, 100), (0.001, 1), (2.25, 2250), (60, 60000)],
)
def test_good_batch_intervals(interval, ms):
    app = kstream.App("t", batch_interval=interval)
    assert app.interval_ms == ms
    assert app.batch_interval == ms / 1000


@pytest.mark.parametrize("interval", [0, 0.0, -1, -0.5, 0.0005, 1.0001, 0.0015, True, "1", None])
def test_bad_batch_intervals(interval):
    with pytest.raises(ConfigError, match="batch_interval"):
        kstream.App("t", batch_interval=interval)


@pytest.mark.parametrize("app_id", ["", "   ", None, 7])
def test_bad_app_id(app_id):
    with pytest.raises(ConfigError, match="app_id"):
        kstream.App(app_id)


def test_unknown_setting_name():
    with pytest.raises(ConfigError, match="batch_intervall"):
        kstream.App("t", batch_intervall=1.0)
    with pytest.raises(ConfigError, match="unknown setting 'lateness'"):
        kstream.App("t", lateness=0.5)


def test_settings_are_kept():
    app = kstream.App(
        "t",
        brokers="b:9092",
        allowed_lateness=2,
        time="processing",
        late="drop",
        max_empty_batches=5,
        repartition_partitions=8,
    )
    s = app.settings
    assert (s.brokers, s.allowed_lateness, s.time, s.late) == ("b:9092", 2, "processing", "drop")
    assert (s.max_empty_batches, s.repartition_partitions) == (5, 8)


def test_setting_defaults():
    s = kstream.App("t").settings
    assert (s.time, s.late, s.guarantee, s.on_error) == ("event", "join", "at-least-once", "dlq")
    assert s.brokers is None
    assert s.repartition_partitions is None
    assert s.create_topics is False


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("late", "dlqq"),
        ("late", "keep"),
        ("late", None),
        ("time", "wall"),
        ("time", "Event"),
        ("guarantee", "at-most-once"),
        ("on_error", "ignore"),
        ("internal_serde", "json"),
    ],
)
def test_bad_choices(name, value):
    with pytest.raises(ConfigError, match=f"{name}="):
        kstream.App("t", **{name: value})


def test_on_error_choices_and_message():
    for policy in ("dlq", "skip", "fail"):
        assert kstream.App("t", on_error=policy).settings.on_error == policy
    with pytest.raises(ConfigError) as e:
        kstream.App("t", on_error="drop")
    assert str(e.value) == "on_error='drop': choose one of dlq, skip, fail"


def test_internal_serde_per_app_and_per_operator():
    assert kstream.App("t").settings.internal_serde == "msgpack"
    assert kstream.App("t", internal_serde="pickle").settings.internal_serde == "pickle"
    s = kstream.App("t").queue_stream([])
    assert s.reduce_by_key(max, serde="pickle").node.op.serde == "pickle"
    with pytest.raises(ConfigError) as e:
        s.group_by_key(serde="json")
    assert str(e.value) == "group_by_key: serde='json': choose one of msgpack, pickle"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("allowed_lateness", -0.1),
        ("allowed_lateness", "1"),
        ("repartition_partitions", 0),
        ("repartition_partitions", 2.5),
        ("max_empty_batches", 0),
        ("max_empty_batches", 1.5),
        ("create_topics", "yes"),
        ("create_topics", 1),
    ],
)
def test_bad_numbers(name, value):
    with pytest.raises(ConfigError, match=name):
        kstream.App("t", **{name: value})


@pytest.mark.parametrize("arg", ["key_serde", "value_serde"])
def test_unknown_serde_in_stream(arg):
    app = kstream.App("t")
    with pytest.raises(ConfigError, match=arg):
        app.stream("lines", **{arg: "yaml"})


@pytest.mark.parametrize("arg", ["key_serde", "value_serde"])
def test_unknown_serde_in_to(arg):
    app = kstream.App("t")
    s = app.stream("lines")
    with pytest.raises(ConfigError, match=arg):
        s.to("out", **{arg: "avro"})


def test_known_serdes_are_accepted():
    app = kstream.App("t")
    names = ("str", "bytes", "json", "int", "pickle")
    for name in names:
        app.stream("lines", key_serde=name, value_serde=name).to(
            "out", key_serde=name, value_serde=name
        )
    app.stream("lines").to("out")  # "auto" for outputs
    sources = [n.op for n in app.graph.sources()]
    sinks = [n.op for n in app.nodes if n.op.is_sink]
    pairs = [(name, name) for name in names]
    assert [(op.key_serde, op.value_serde) for op in sources] == [*pairs, ("str", "str")]
    assert [(op.key_serde, op.value_serde) for op in sinks] == [*pairs, ("auto", "auto")]


@pytest.mark.parametrize("topics", ["", [], [""], ["ok", ""], [None]])
def test_bad_topic_names(topics):
    with pytest.raises(ConfigError, match="topics"):
        kstream.App("t").stream(topics)


@pytest.mark.parametrize("n", [0, -1, 1.5, "2", None])
def test_repartition_needs_a_positive_whole_number(n):
    s = kstream.App("t").queue_stream([])
    with pytest.raises(ConfigError, match="repartition"):
        s.repartition(n)
