"""Record-at-a-time operators, applied over whole batches with C-level loops."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Iterator
from itertools import chain
from typing import Any

from kstream.graph import Batch, Operator


def takes_time(fn: Callable[..., Any]) -> bool:
    """True for Spark's two-argument form `fn(time, batch)` of transform/foreachRDD."""
    try:
        params = [
            p
            for p in inspect.signature(fn).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
        ]
    except (TypeError, ValueError):
        return False
    return len(params) == 2


class RecordWise(Operator):
    """An operator of one record at a time: it streams its input and has a lazy form, so
    a chain of them runs as one pass of C-level iterators (kstream.graph.evaluate)."""

    streams = True

    def __init__(self, fn: Callable[[Any], Any]):
        self.fn = fn

    def apply(self, inputs, t):
        (x,) = inputs
        return None if x is None else list(self.lazy(x))

    def lazy(self, x: Iterable[Any]) -> Iterator[Any]:
        raise NotImplementedError


class Map(RecordWise):
    kind = "map"

    def lazy(self, x):
        return map(self.fn, x)


class FlatMap(RecordWise):
    kind = "flat_map"

    def lazy(self, x):
        return chain.from_iterable(map(self.fn, x))


class Filter(RecordWise):
    kind = "filter"

    def lazy(self, x):
        return filter(self.fn, x)


class MapValues(RecordWise):
    kind = "map_values"

    def lazy(self, x):
        fn = self.fn
        return ((k, fn(v)) for k, v in x)


class FlatMapValues(RecordWise):
    kind = "flat_map_values"

    def lazy(self, x):
        fn = self.fn
        return ((k, w) for k, v in x for w in fn(v))


class Union(Operator):
    kind = "union"

    def apply(self, inputs, t):
        present = [x for x in inputs if x is not None]
        if not present:
            return None
        out: Batch = []
        for x in present:
            out.extend(x)
        return out


class Transform(Operator):
    kind = "transform"

    def __init__(self, fn: Callable[..., Iterable[Any]]):
        self.fn = fn
        self.with_time = takes_time(fn)

    def apply(self, inputs, t):
        (x,) = inputs
        if x is None:
            return None
        result = self.fn(t / 1000, x) if self.with_time else self.fn(x)
        return list(result)
