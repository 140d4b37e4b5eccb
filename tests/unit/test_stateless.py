"""Record-at-a-time operators and transform/union, run on the virtual clock."""

from __future__ import annotations

from collections import Counter

import kstream


def app_and_queue(batches, interval=1.0, **kwargs):
    app = kstream.App("t", batch_interval=interval)
    return app, app.queue_stream(batches, **kwargs)


def bags(collected):
    """Each batch as (time, multiset): order within a batch is arbitrary."""
    return [(t, Counter(records)) for t, records in collected.batches]


def test_map_keeps_order_and_batch_times():
    app, s = app_and_queue([[1, 2, 3], [], [10]])
    out = s.map(lambda x: x * 2).collect()
    app.run_batches(3)
    assert out.batches == [(1.0, [2, 4, 6]), (2.0, []), (3.0, [20])]


def test_batches_after_the_queue_runs_out_are_empty():
    app, s = app_and_queue([["a"], ["b"]])
    out = s.map(str.upper).collect()
    app.run_batches(5)
    assert out.batches == [(1.0, ["A"]), (2.0, ["B"]), (3.0, []), (4.0, []), (5.0, [])]


def test_batch_times_follow_a_fractional_interval():
    app, s = app_and_queue([[1], [2], [3], [4]], interval=0.1)
    out = s.map(lambda x: x).collect()
    app.run_batches(4)
    assert [t for t, _ in out.batches] == [0.1, 0.2, 0.3, 0.4]
    assert [r for _, r in out.batches] == [[1], [2], [3], [4]]


def test_flat_map_and_alias():
    lines = [["a b", "c"], [], ["", "d e f"]]
    app, s = app_and_queue(lines)
    snake = s.flat_map(str.split).collect()
    camel = s.flatMap(lambda line: line.split()).collect()
    app.run_batches(3)
    expected = [(1.0, ["a", "b", "c"]), (2.0, []), (3.0, ["d", "e", "f"])]
    assert snake.batches == expected
    assert camel.batches == expected


def test_flat_map_accepts_generators_and_empty_results():
    app, s = app_and_queue([[0, 1, 3]])
    out = s.flat_map(lambda n: (n for _ in range(n))).collect()
    app.run_batches(1)
    assert sorted(out.batches[0][1]) == [1, 3, 3, 3]


def test_filter():
    app, s = app_and_queue([list(range(10)), [1, 3], []])
    out = s.filter(lambda x: x % 2 == 0).collect()
    app.run_batches(3)
    assert out.batches == [(1.0, [0, 2, 4, 6, 8]), (2.0, []), (3.0, [])]


def test_filter_uses_truthiness():
    app, s = app_and_queue([[0, "", None, [], "x", 5]])
    out = s.filter(lambda x: x).collect()
    app.run_batches(1)
    assert out.batches == [(1.0, ["x", 5])]


def test_map_values_and_alias():
    pairs = [[("a", 1), ("b", 2), ("a", 3)], []]
    app, s = app_and_queue(pairs)
    snake = s.map_values(lambda v: v * 10).collect()
    camel = s.mapValues(str).collect()
    app.run_batches(2)
    assert bags(snake) == [(1.0, Counter([("a", 10), ("b", 20), ("a", 30)])), (2.0, Counter())]
    assert bags(camel) == [(1.0, Counter([("a", "1"), ("b", "2"), ("a", "3")])), (2.0, Counter())]


def test_flat_map_values_and_alias():
    pairs = [[("a", "x y"), ("b", ""), ("a", "z")]]
    app, s = app_and_queue(pairs)
    snake = s.flat_map_values(str.split).collect()
    camel = s.flatMapValues(lambda v: list(v.replace(" ", ""))).collect()
    app.run_batches(1)
    expected = Counter([("a", "x"), ("a", "y"), ("a", "z")])
    assert bags(snake) == [(1.0, expected)]
    assert bags(camel) == [(1.0, expected)]


def test_chained_stateless_operators():
    app, s = app_and_queue([["The cat", "the dog"], ["a"]])
    out = (
        s.flat_map(str.split)
        .map(str.lower)
        .filter(lambda w: len(w) > 1)
        .map(lambda w: (w, len(w)))
        .map_values(lambda n: n * n)
        .collect()
    )
    app.run_batches(2)
    assert bags(out) == [
        (1.0, Counter([("the", 9), ("cat", 9), ("the", 9), ("dog", 9)])),
        (2.0, Counter()),
    ]


def test_union_of_two_and_three_streams():
    app = kstream.App("t", batch_interval=1.0)
    a = app.queue_stream([[1, 2], [], [3]])
    b = app.queue_stream([[10], [20], []])
    c = app.queue_stream([[], [100], [300, 300]])
    two = a.union(b).collect()
    three = a.union(b, c).collect()
    app.run_batches(4)
    assert bags(two) == [
        (1.0, Counter([1, 2, 10])),
        (2.0, Counter([20])),
        (3.0, Counter([3])),
        (4.0, Counter()),
    ]
    assert bags(three) == [
        (1.0, Counter([1, 2, 10])),
        (2.0, Counter([20, 100])),
        (3.0, Counter([3, 300, 300])),
        (4.0, Counter()),
    ]


def test_union_with_itself_doubles_the_records():
    app, s = app_and_queue([["a", "b"], []])
    out = s.union(s).collect()
    app.run_batches(2)
    assert bags(out) == [(1.0, Counter({"a": 2, "b": 2})), (2.0, Counter())]


def test_app_union():
    app = kstream.App("t", batch_interval=1.0)
    a = app.queue_stream([["x"]])
    b = app.queue_stream([["y"]])
    out = app.union(a, b).collect()
    app.run_batches(1)
    assert bags(out) == [(1.0, Counter(["x", "y"]))]


def test_transform_with_records_only():
    app, s = app_and_queue([[3, 1, 2], [], [5, 4]])
    out = s.transform(lambda records: sorted(records, reverse=True)).collect()
    app.run_batches(3)
    assert out.batches == [(1.0, [3, 2, 1]), (2.0, []), (3.0, [5, 4])]


def test_transform_with_time_and_records():
    seen = []

    def tag(time, records):
        seen.append(time)
        return [(time, r) for r in records]

    app, s = app_and_queue([["a"], [], ["b", "c"]], interval=0.5)
    out = s.transform(tag).collect()
    app.run_batches(3)
    assert seen == [0.5, 1.0, 1.5]
    assert bags(out) == [
        (0.5, Counter([(0.5, "a")])),
        (1.0, Counter()),
        (1.5, Counter([(1.5, "b"), (1.5, "c")])),
    ]


def test_transform_may_return_any_iterable_and_change_the_size():
    def dedupe(records):
        return (r for r in set(records))

    app, s = app_and_queue([["a", "a", "b"], []])
    out = s.transform(dedupe).collect()
    app.run_batches(2)
    assert bags(out) == [(1.0, Counter(["a", "b"])), (2.0, Counter())]


def test_transform_can_add_records_to_an_empty_batch():
    app, s = app_and_queue([[], []])
    out = s.transform(lambda t, records: [*records, ("tick", t)]).collect()
    app.run_batches(2)
    assert out.batches == [(1.0, [("tick", 1.0)]), (2.0, [("tick", 2.0)])]


def test_transform_with_a_default_argument_still_takes_records_only():
    def keep(records, limit=2):
        return list(records)[:limit]

    app, s = app_and_queue([[1, 2, 3]])
    out = s.transform(keep).collect()
    app.run_batches(1)
    assert out.batches == [(1.0, [1, 2])]


def test_one_stream_feeds_several_branches_independently():
    app, s = app_and_queue([[1, 2, 3]])
    doubled = s.map(lambda x: x * 2).collect()
    odd = s.filter(lambda x: x % 2).collect()
    same = s.collect()
    app.run_batches(1)
    assert doubled.batches == [(1.0, [2, 4, 6])]
    assert odd.batches == [(1.0, [1, 3])]
    assert same.batches == [(1.0, [1, 2, 3])]


def test_run_batches_twice_continues_the_clock():
    app, s = app_and_queue([[1], [2], [3], [4], [5]])
    out = s.map(lambda x: -x).collect()
    app.run_batches(2)
    assert out.batches == [(1.0, [-1]), (2.0, [-2])]
    app.run_batches(3)
    assert out.batches == [(1.0, [-1]), (2.0, [-2]), (3.0, [-3]), (4.0, [-4]), (5.0, [-5])]


def test_run_batches_continues_the_clock_after_the_pipeline_grows():
    app, s = app_and_queue([[1], [2], [3], [4]])
    first = s.collect()
    app.run_batches(2)
    second = s.map(lambda x: x * 10).collect()
    app.run_batches(2)
    assert first.batches == [(1.0, [1]), (2.0, [2]), (3.0, [3]), (4.0, [4])]
    assert second.batches == [(3.0, [30]), (4.0, [40])]


def test_run_zero_batches_does_nothing():
    app, s = app_and_queue([[1]])
    out = s.collect()
    app.run_batches(0)
    assert out.batches == []
    app.run_batches(1)
    assert out.batches == [(1.0, [1])]
