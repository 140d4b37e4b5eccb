"""Per-batch joins and cogroup of two pair streams, with Spark's semantics."""

from __future__ import annotations

import operator
from collections import Counter

import pytest

import kstream

LEFT = [
    [("a", 1), ("a", 2), ("b", 3), ("c", 4)],
    [],
    [("x", 1)],
    [("k", "l")],
]
RIGHT = [
    [("a", "x"), ("a", "y"), ("b", "z"), ("d", "w")],
    [("q", 9)],
    [],
    [("k", "r")],
]
TIMES = [1.0, 2.0, 3.0, 4.0, 5.0]  # the fifth batch: both queues have run out


def two_streams(left=LEFT, right=RIGHT):
    app = kstream.App("t", batch_interval=1.0)
    return app, app.queue_stream(left), app.queue_stream(right)


def bags(collected):
    return [(t, Counter(records)) for t, records in collected.batches]


def expected_join(how):
    """Joins of LEFT and RIGHT, batch by batch, written out with plain loops."""
    out = []
    for t, lb, rb in zip(TIMES, [*LEFT, []], [*RIGHT, []], strict=True):
        rows = []
        for k, v in lb:
            matches = [w for k2, w in rb if k2 == k]
            rows.extend((k, (v, w)) for w in matches)
            if not matches and how in ("left", "full"):
                rows.append((k, (v, None)))
        if how in ("right", "full"):
            left_keys = {k for k, _ in lb}
            rows.extend((k, (None, w)) for k, w in rb if k not in left_keys)
        out.append((t, Counter(rows)))
    return out


def test_inner_join_by_hand():
    app, left, right = two_streams()
    out = left.join(right).collect()
    app.run_batches(5)
    assert bags(out) == [
        (
            1.0,
            Counter(
                [
                    ("a", (1, "x")),
                    ("a", (1, "y")),
                    ("a", (2, "x")),
                    ("a", (2, "y")),
                    ("b", (3, "z")),
                ]
            ),
        ),
        (2.0, Counter()),
        (3.0, Counter()),
        (4.0, Counter([("k", ("l", "r"))])),
        (5.0, Counter()),
    ]


def test_left_outer_join_by_hand():
    app, left, right = two_streams()
    out = left.left_outer_join(right).collect()
    app.run_batches(5)
    assert bags(out)[0] == (
        1.0,
        Counter(
            [
                ("a", (1, "x")),
                ("a", (1, "y")),
                ("a", (2, "x")),
                ("a", (2, "y")),
                ("b", (3, "z")),
                ("c", (4, None)),
            ]
        ),
    )
    assert bags(out)[1:] == [
        (2.0, Counter()),
        (3.0, Counter([("x", (1, None))])),
        (4.0, Counter([("k", ("l", "r"))])),
        (5.0, Counter()),
    ]


def test_right_outer_join_by_hand():
    app, left, right = two_streams()
    out = left.right_outer_join(right).collect()
    app.run_batches(5)
    assert bags(out) == [
        (
            1.0,
            Counter(
                [
                    ("a", (1, "x")),
                    ("a", (1, "y")),
                    ("a", (2, "x")),
                    ("a", (2, "y")),
                    ("b", (3, "z")),
                    ("d", (None, "w")),
                ]
            ),
        ),
        (2.0, Counter([("q", (None, 9))])),
        (3.0, Counter()),
        (4.0, Counter([("k", ("l", "r"))])),
        (5.0, Counter()),
    ]


def test_full_outer_join_by_hand():
    app, left, right = two_streams()
    out = left.full_outer_join(right).collect()
    app.run_batches(5)
    assert bags(out) == [
        (
            1.0,
            Counter(
                [
                    ("a", (1, "x")),
                    ("a", (1, "y")),
                    ("a", (2, "x")),
                    ("a", (2, "y")),
                    ("b", (3, "z")),
                    ("c", (4, None)),
                    ("d", (None, "w")),
                ]
            ),
        ),
        (2.0, Counter([("q", (None, 9))])),
        (3.0, Counter([("x", (1, None))])),
        (4.0, Counter([("k", ("l", "r"))])),
        (5.0, Counter()),
    ]


@pytest.mark.parametrize(
    ("snake", "camel", "how"),
    [
        ("join", "join", "inner"),
        ("left_outer_join", "leftOuterJoin", "left"),
        ("right_outer_join", "rightOuterJoin", "right"),
        ("full_outer_join", "fullOuterJoin", "full"),
    ],
)
def test_joins_and_aliases_match_plain_python(snake, camel, how):
    app, left, right = two_streams()
    a = getattr(left, snake)(right).collect()
    b = getattr(left, camel)(right, num_partitions=3).collect()
    app.run_batches(5)
    assert bags(a) == expected_join(how)
    assert bags(b) == expected_join(how)


def test_join_where_a_value_is_none_is_still_a_match():
    app, left, right = two_streams([[("a", None)]], [[("a", None), ("b", 1)]])
    inner = left.join(right).collect()
    full = left.full_outer_join(right).collect()
    app.run_batches(1)
    assert bags(inner) == [(1.0, Counter([("a", (None, None))]))]
    assert bags(full) == [(1.0, Counter([("a", (None, None)), ("b", (None, 1))]))]


def test_self_join_squares_repeated_keys():
    app = kstream.App("t", batch_interval=1.0)
    s = app.queue_stream([[("k", 1), ("k", 2), ("j", 3)]])
    out = s.join(s).collect()
    app.run_batches(1)
    assert bags(out) == [
        (
            1.0,
            Counter(
                [
                    ("k", (1, 1)),
                    ("k", (1, 2)),
                    ("k", (2, 1)),
                    ("k", (2, 2)),
                    ("j", (3, 3)),
                ]
            ),
        )
    ]


def test_join_of_aggregated_streams():
    app = kstream.App("t", batch_interval=1.0)
    clicks = app.queue_stream([["u1", "u2", "u1"], ["u3"]])
    buys = app.queue_stream([[("u1", 10.0), ("u1", 5.0)], [("u2", 1.0)]])
    clicks_per_user = clicks.map(lambda u: (u, 1)).reduce_by_key(operator.add)
    spent = buys.reduce_by_key(operator.add)
    out = clicks_per_user.left_outer_join(spent).collect()
    app.run_batches(2)
    assert bags(out) == [
        (1.0, Counter([("u1", (2, 15.0)), ("u2", (1, None))])),
        (2.0, Counter([("u3", (1, None))])),
    ]


# -- cogroup --------------------------------------------------------------------------
def cogroups(collected):
    out = []
    for t, records in collected.batches:
        keys = [k for k, _ in records]
        assert len(keys) == len(set(keys)), f"duplicate keys in batch {t}: {records}"
        batch = {}
        for k, (vs, ws) in records:
            assert isinstance(vs, list)
            assert isinstance(ws, list)
            batch[k] = (sorted(vs), sorted(ws))
        out.append((t, batch))
    return out


def test_cogroup_gives_both_sides_as_lists():
    app, left, right = two_streams()
    out = left.cogroup(right).collect()
    app.run_batches(5)
    assert cogroups(out) == [
        (
            1.0,
            {
                "a": ([1, 2], ["x", "y"]),
                "b": ([3], ["z"]),
                "c": ([4], []),
                "d": ([], ["w"]),
            },
        ),
        (2.0, {"q": ([], [9])}),
        (3.0, {"x": ([1], [])}),
        (4.0, {"k": (["l"], ["r"])}),
        (5.0, {}),
    ]


def test_cogroup_matches_plain_python():
    app, left, right = two_streams()
    out = left.cogroup(right, num_partitions=2).collect()
    app.run_batches(5)
    expected = []
    for t, lb, rb in zip(TIMES, [*LEFT, []], [*RIGHT, []], strict=True):
        keys = {k for k, _ in lb} | {k for k, _ in rb}
        expected.append(
            (
                t,
                {
                    k: (sorted(v for k2, v in lb if k2 == k), sorted(w for k2, w in rb if k2 == k))
                    for k in keys
                },
            )
        )
    assert cogroups(out) == expected
