"""Record-at-a-time operators, applied over whole batches with C-level loops."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
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


class Map(Operator):
    kind = "map"

    def __init__(self, fn: Callable[[Any], Any]):
        self.fn = fn

    def apply(self, inputs, t):
        (x,) = inputs
        return None if x is None else list(map(self.fn, x))


class FlatMap(Operator):
    kind = "flat_map"

    def __init__(self, fn: Callable[[Any], Iterable[Any]]):
        self.fn = fn

    def apply(self, inputs, t):
        (x,) = inputs
        if x is None:
            return None
        return list(chain.from_iterable(map(self.fn, x)))


class Filter(Operator):
    kind = "filter"

    def __init__(self, fn: Callable[[Any], Any]):
        self.fn = fn

    def apply(self, inputs, t):
        (x,) = inputs
        return None if x is None else list(filter(self.fn, x))


class MapValues(Operator):
    kind = "map_values"

    def __init__(self, fn: Callable[[Any], Any]):
        self.fn = fn

    def apply(self, inputs, t):
        (x,) = inputs
        if x is None:
            return None
        fn = self.fn
        return [(k, fn(v)) for k, v in x]


class FlatMapValues(Operator):
    kind = "flat_map_values"

    def __init__(self, fn: Callable[[Any], Iterable[Any]]):
        self.fn = fn

    def apply(self, inputs, t):
        (x,) = inputs
        if x is None:
            return None
        fn = self.fn
        return [(k, w) for k, v in x for w in fn(v)]


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
