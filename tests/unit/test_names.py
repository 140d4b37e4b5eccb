"""Names that survive an edit of the pipeline, and internal topics that are this app's
exactly (kstream/names.py)."""

from __future__ import annotations

import operator

import pytest

import kstream
from kstream.errors import ConfigError
from kstream.names import check_app_id, internal_topic, parse_internal
from kstream.plan import compile_plan


def add(new_values, total):
    return sum(new_values) + (total or 0)


def internal_topics(build) -> list[str]:
    app = kstream.App("shop", batch_interval=1.0)
    build(app.stream("lines"))
    return compile_plan(app).describe()["internal_topics"]


def test_stateless_steps_added_removed_or_reordered_keep_every_name():
    def totals(words):
        counts = words.map(lambda w: (w, 1)).reduce_by_key(operator.add)
        counts.update_state_by_key(add).to("out")

    plain = internal_topics(lambda s: totals(s.flat_map(str.split)))
    edited = internal_topics(
        lambda s: totals(s.filter(bool).flat_map(str.split).map(str.lower).filter(len))
    )
    assert (
        plain
        == edited
        == [
            "shop--reduce_by_key.add--repartition",
            # update_state_by_key reads reduce_by_key's output, spread by key already
            "shop--update_state_by_key.add--changelog",
        ]
    )


def test_equal_default_names_are_numbered_in_the_order_they_are_made():
    def two(s):
        pairs = s.map(lambda w: (w, 1))
        pairs.reduce_by_key(operator.add).to("a")
        pairs.map(str).map(lambda w: (w, 1)).reduce_by_key(operator.add).to("b")

    assert internal_topics(two) == [
        "shop--reduce_by_key.add--repartition",
        "shop--reduce_by_key.add-2--repartition",
    ]


def test_a_given_name_names_the_state_and_lambdas_get_legal_names():
    topics = internal_topics(
        lambda s: (
            s.map(lambda w: (w, 1))
            .update_state_by_key(lambda vs, t: sum(vs) + (t or 0), name="word-totals")
            .map(lambda kv: (kv[0], str(kv[1])))
            .reduce_by_key(lambda a, b: a + b)
            .to("out")
        )
    )
    assert topics == [
        "shop--word-totals--repartition",
        # the lambda's qualified name, <locals> and <> dropped
        "shop--reduce_by_key.test_a_given_name_names_the_state_and_lambdas_get_legal_names"
        ".lambda.lambda--repartition",
        "shop--word-totals--changelog",
    ]


def test_two_operators_with_one_name_are_refused_naming_both():
    app = kstream.App("shop", batch_interval=1.0)
    pairs = app.stream("lines").map(lambda w: (w, 1))
    pairs.reduce_by_key(operator.add, name="totals")
    with pytest.raises(
        ConfigError,
        match=r"two operators are named 'totals': reduce_by_key "
        r"and update_state_by_key",
    ):
        pairs.update_state_by_key(add, name="totals")


@pytest.mark.parametrize(
    "bad",
    ["", "orders v2", "orders/v2", "orders--v2", "-orders", "orders-", "ørders", "o" * 140, 7],
)
def test_app_ids_that_would_make_illegal_or_ambiguous_topics_are_refused(bad):
    with pytest.raises(ConfigError, match="app_id="):
        kstream.App(bad)


@pytest.mark.parametrize("bad", ["a b", "a--b", "-a", "a-", "a/b", "x" * 101])
def test_bad_operator_names_are_refused(bad):
    app = kstream.App("shop", batch_interval=1.0)
    with pytest.raises(ConfigError, match="name="):
        app.stream("lines").count(name=bad)


def test_an_internal_topic_is_this_apps_exactly():
    assert check_app_id("orders.v2_eu-1") == "orders.v2_eu-1"
    mine = internal_topic("orders", "update_state_by_key.add", "changelog")
    assert parse_internal("orders", mine) == ("update_state_by_key.add", "changelog")
    theirs = internal_topic("orders-v2", "update_state_by_key.add", "changelog")
    assert parse_internal("orders", theirs) is None
    assert parse_internal("orders-v2", mine) is None
    assert parse_internal("orders", "orders--x--state") is None  # not a kind of ours
    assert parse_internal("orders", "orders-dlq") is None
    assert parse_internal("orders", "orders--a--b--changelog") is None
