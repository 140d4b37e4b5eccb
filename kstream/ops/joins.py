"""Per-batch joins and cogroup of two pair streams (Spark's semantics)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from kstream.graph import Batch, Operator


def group(pairs: Batch) -> dict[Any, list[Any]]:
    groups: defaultdict[Any, list[Any]] = defaultdict(list)
    for k, v in pairs:
        groups[k].append(v)
    return groups


class Cogroup(Operator):
    """(k, ([left values], [right values])) for every key on either side."""

    kind = "cogroup"

    def apply(self, inputs, t):
        left, right = inputs
        if left is None and right is None:
            return None
        lg, rg = group(left or []), group(right or [])
        return [(k, (lg.get(k, []), rg.get(k, []))) for k in {**lg, **rg}]


class Join(Operator):
    """Inner/left/right/full outer join: cartesian product per key, None for a missing side."""

    def __init__(self, how: str):
        self.how = how
        self.kind = "join" if how == "inner" else f"{how}_outer_join"

    def apply(self, inputs, t):
        left, right = inputs
        if left is None and right is None:
            return None
        lg, rg = group(left or []), group(right or [])
        keep_left = self.how in ("left", "full")
        keep_right = self.how in ("right", "full")
        out: Batch = []
        for k, vs in lg.items():
            ws = rg.get(k)
            if ws:
                out.extend((k, (v, w)) for v in vs for w in ws)
            elif keep_left:
                out.extend((k, (v, None)) for v in vs)
        if keep_right:
            for k, ws in rg.items():
                if k not in lg:
                    out.extend((k, (None, w)) for w in ws)
        return out
