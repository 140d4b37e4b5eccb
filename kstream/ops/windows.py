"""Sliding windows and session windows (Spark's window rules, docs/design.md §2).

A window of length L and slide S emits at batch T when T is a multiple of S and covers
the batches in (T - L, T]; between slides it gives None (no result). Each batch's partial
result is kept in the store as ("b", T); batches that have left every window are deleted.
With an inverse function the window aggregate per key, ("k", key), is kept and updated
at each slide as Spark's ReducedWindowedDStream does: minus the batches that left,
plus the batches that came. META holds the stored batch times and the last slide folded
into the aggregate.
"""

from __future__ import annotations

import functools
import logging
from bisect import insort
from collections import defaultdict
from collections.abc import Callable
from itertools import chain
from typing import Any

from kstream.graph import Batch
from kstream.ops.combine import (
    Combiner,
    Grouping,
    ValueCounter,
    reduce_pairs,
    reducing,
)
from kstream.ops.keyed import reduce_all
from kstream.ops.stateful import KEY, META, BatchContext, Stateful, keyed_items, ms
from kstream.state.store import Store

log = logging.getLogger(__name__)

NOTHING = object()  # a batch with nothing to keep


def _fmt(t: int) -> str:
    return f"{ms(t):g}s"


class Windowed(Stateful):
    """Base of the sliding windows. Subclasses give `batch_value` (what to keep of one
    batch, NOTHING for nothing) and either `combine` (the window from its batches' values,
    in time order) or, with `inv_fn`, the incremental path over dict values."""

    inv_fn: Callable[[Any, Any], Any] | None = None
    filter_fn: Callable[[tuple[Any, Any]], Any] | None = None
    fn: Callable[[Any, Any], Any]

    def __init__(self, length_ms: int, slide_ms: int):
        self.length_ms = length_ms
        self.slide_ms = slide_ms  # also read by the DStream builder (window of a window)

    def describe(self) -> str:
        return f"{self.kind}({_fmt(self.length_ms)}, {_fmt(self.slide_ms)})"

    @property
    def drain_ms(self) -> int:
        """How long after its last record the operator still emits: its last window."""
        return self.length_ms + self.slide_ms

    def batch_value(self, x: Batch) -> Any:
        raise NotImplementedError

    def combine(self, values: list[Any]) -> Batch:
        raise NotImplementedError

    def apply_in(self, context: BatchContext, inputs, t):
        (x,) = inputs
        if x is None:
            return None
        store, length, slide = context.store, self.length_ms, self.slide_ms
        meta = store.get(META) or {"batches": [], "through": None}
        value = self.batch_value(x)
        next_emit = -(-t // slide) * slide
        changed = False
        if value is not NOTHING and t > next_emit - length and t not in meta["batches"]:
            store.put(("b", t), value)  # kept only if the next window (so any) needs it
            insort(meta["batches"], t)
            changed = True
        if t % slide:
            if changed:
                store.put(META, meta)
            return None
        emit = self._recompute if self.inv_fn is None else self._incremental
        out = emit(store, t, meta)
        store.put(META, meta)
        return out

    def _recompute(self, store: Store, t: int, meta: dict) -> Batch:
        length = self.length_ms
        batches = meta["batches"]
        inside = [b for b in batches if t - length < b <= t]
        out = self.combine(store.get_many([("b", b) for b in inside]))
        keep = t + self.slide_ms - length  # the next window starts after this
        for b in batches:
            if b <= keep:
                store.delete(("b", b))
        meta["batches"] = [b for b in batches if b > keep]
        return out

    def _incremental(self, store: Store, t: int, meta: dict) -> Batch:
        length = self.length_ms
        fn, inv, keep = self.fn, self.inv_fn, self.filter_fn
        through = meta["through"]
        batches = meta["batches"]
        if through is not None and t <= through:  # this slide was folded in already
            return self.present(store, t, meta)
        added = [b for b in batches if through is not None and b <= through]
        fresh = [b for b in batches if through is None or b > through]
        old = [b for b in added if b <= t - length]
        new = [b for b in fresh if b > t - length]
        gone = old + [b for b in fresh if b <= t - length]  # incl. never added, already out
        old_values = store.get_many([("b", b) for b in old])
        new_values = store.get_many([("b", b) for b in new])
        keys = list(dict.fromkeys(k for p in (*old_values, *new_values) for k in p))
        previous = store.get_many([(KEY, k) for k in keys])
        for k, prev in zip(keys, previous, strict=True):
            olds = [p[k] for p in old_values if k in p]
            news = [p[k] for p in new_values if k in p]
            if prev is None:
                if not news:
                    continue  # left the window before it was ever in it (filtered out)
                v = functools.reduce(fn, news)
            else:
                v = prev[0]  # stored as [value]: a value may be None
                if olds:
                    v = inv(v, functools.reduce(fn, olds))
                if news:
                    v = fn(v, functools.reduce(fn, news))
            if keep is not None and not keep((k, v)):
                if prev is not None:
                    store.delete((KEY, k))
            else:
                store.put((KEY, k), [v])
        for b in gone:
            store.delete(("b", b))
        meta["batches"] = [b for b in batches if b not in set(gone)]
        meta["through"] = t
        return self.present(store, t, meta)

    def present(self, store: Store, t: int, meta: dict) -> Batch:
        """The output of an incremental window: every key of the aggregate."""
        return [(k, v[0]) for k, v in keyed_items(store)]


# -- whole-stream windows (GLOBAL shuffle: one partition) ------------------------------
class Window(Windowed):
    """window(length, slide): the records of the batches in the window, in batch order."""

    kind = "window"

    def batch_value(self, x):
        return list(x) if x else NOTHING

    def combine(self, values):
        return [r for v in values for r in v]


class CountByWindow(Windowed):
    """count_by_window: one count per window, [0] for an empty one."""

    kind = "count_by_window"

    def partial(self, batch):
        return [len(batch)]

    def batch_value(self, x):
        return sum(x) or NOTHING

    def combine(self, values):
        return [sum(values)]


class ReduceByWindow(Windowed):
    """reduce_by_window(fn, inv_fn): one value per window. Without inv_fn, [] for an empty
    window; with it, as Spark (a reduce_by_key_and_window of (1, x), whose key stays once
    it came): [] until a window holds a record, then always a value, the inverse-reduced
    one (0 for a sum) once the records have left."""

    kind = "reduce_by_window"

    def __init__(self, fn, inv_fn, length_ms, slide_ms):
        super().__init__(length_ms, slide_ms)
        self.fn = fn
        self.inv_fn = inv_fn

    def partial(self, batch):
        return reduce_all(self.fn, batch)

    def batch_value(self, x):
        # a dict with one key, so that the incremental path serves it too
        return {None: functools.reduce(self.fn, x)} if x else NOTHING

    def combine(self, values):
        return reduce_all(self.fn, [v[None] for v in values])

    def present(self, store, t, meta):
        agg = store.get((KEY, None))
        return [] if agg is None else [agg[0]]


# -- windows by key (BY_KEY shuffle) ----------------------------------------------------
class KeyedWindow(Windowed):
    """A window of a `Combiner` (kstream/ops/combine.py): each batch keeps its keys'
    combiners, {key: combiner}, which the window joins in batch order."""

    combiner: Combiner
    # whether its input crossed a shuffle that ran `partial`; read without one (already
    # by key, kstream/dstream.py) it combines its batch itself
    pre_combined = True

    def partial(self, batch):
        return self.combiner.partial(batch)

    def batch_value(self, x):
        if not x:
            return NOTHING
        return dict(self.combiner.merge(x if self.pre_combined else self.partial(x)))

    def combine(self, values):
        return self.combiner.combine_combiners(chain.from_iterable(p.items() for p in values))


class ReduceByKeyAndWindow(KeyedWindow):
    """Per key: fn over the window's values; with inv_fn kept incrementally (keys whose
    value returns to zero stay unless filter_fn drops them, as in Spark)."""

    kind = "reduce_by_key_and_window"
    partial_streams = True

    def __init__(self, fn, inv_fn, filter_fn, length_ms, slide_ms, pre_combined=True):
        super().__init__(length_ms, slide_ms)
        self.fn = fn
        self.inv_fn = inv_fn
        self.filter_fn = filter_fn
        self.combiner = reducing(fn)
        self.pre_combined = pre_combined

    def combine(self, values):
        keep = self.filter_fn
        return [kv for kv in super().combine(values) if keep is None or keep(kv)]


def _add(a, b):
    return a + b


def _sub(a, b):
    return a - b


def _nonzero(kv):
    return kv[1] != 0


class CountByValueAndWindow(ReduceByKeyAndWindow):
    """Spark's definition: reduce_by_key_and_window(+, -) of (value, 1), zeros dropped."""

    kind = "count_by_value_and_window"

    def __init__(self, length_ms, slide_ms):
        super().__init__(_add, _sub, _nonzero, length_ms, slide_ms)
        self.combiner = ValueCounter()


class GroupByKeyAndWindow(KeyedWindow):
    """Per key, the list of its values in the window, in batch order. Its values cross
    the shuffle as they are (no map-side combine, as group_by_key)."""

    kind = "group_by_key_and_window"
    combiner = Grouping()

    def __init__(self, length_ms: int, slide_ms: int, pre_combined: bool = True):
        super().__init__(length_ms, slide_ms)
        self.pre_combined = pre_combined


# -- session windows by key -------------------------------------------------------------
LATE_POLICIES = ("join", "drop", "dlq")


class ReduceByKeyAndSession(Stateful):
    """Per key, sessions of records no more than `gap` apart in batch time.

    A record of batch t extends its key's open session when t - last <= gap (`last`: the
    batch of the session's newest record); the session closes at the first batch T with
    T - last >= gap and no record for the key, and is emitted there as
    (key, (start, end, value)), start/end the batch times (seconds) of its first and last
    records.

    Late records: records reach the operator batch by batch, in batch order, so a record
    is never older than its batch. A record is late when its batch is older than the
    newest record of the session it would extend, or, for a key with no open session,
    older than the newest batch this operator (this partition's store) has already run —
    its session may have closed and been emitted. That happens only when an older batch
    is run after a newer one (a replay). late="join": the record joins the key's open
    session (or starts one, which closes as soon as its gap has passed); "drop": it is
    counted in `late_records` and dropped; "dlq": counted too, and handed to the batch
    context's `late` list, which on Kafka goes to the dead-letter topic
    (kstream/isolation.py) as the (key, value) this operator received — the key's late
    records of the batch, combined — in a frame of the repartition topic's format, with
    the topic and partition it came from (a local run has no such list: it drops them,
    with a warning).

    Store: ("k", key) -> [start, last, value]; ("d", T) -> keys whose session closes at T
    if not extended; META -> {"clock": newest batch run, "due": sorted close times}.
    """

    kind = "reduce_by_key_and_session"
    partial_streams = True

    def __init__(self, fn: Callable[[Any, Any], Any], gap_ms: int, late: str):
        self.fn = fn
        self.gap_ms = gap_ms
        self.late = late
        self.late_records = 0  # a metric (records counted under drop/dlq), not state

    def describe(self) -> str:
        return f"{self.kind}({_fmt(self.gap_ms)})"

    @property
    def drain_ms(self) -> int:
        """How long after its last record the operator still emits: its session's end."""
        return self.gap_ms

    def partial(self, batch):
        return reduce_pairs(self.fn, batch)

    def _late(self, n: int, t: int, context: BatchContext) -> None:
        self.late_records += n
        if self.late == "dlq" and context.late is None:
            log.warning(
                "%s: %d late record(s) of batch %s dropped (no dead-letter topic in a local run)",
                self.kind,
                n,
                _fmt(t),
            )

    def apply_in(self, context: BatchContext, inputs, t):
        (x,) = inputs
        if x is None:
            return None
        store, fn, gap = context.store, self.fn, self.gap_ms
        meta = store.get(META) or {"clock": None, "due": []}
        clock = meta["clock"]
        now = t if clock is None else max(t, clock)
        pairs = reduce_pairs(fn, x)
        sessions = store.get_many([(KEY, k) for k, _ in pairs])
        out: Batch = []
        due: defaultdict[int, list[Any]] = defaultdict(list)
        late = 0
        for (k, v), s in zip(pairs, sessions, strict=True):
            if s is not None and t >= s[1]:
                if t - s[1] <= gap:
                    s = [s[0], t, fn(s[2], v)]
                else:  # its close was skipped over (no batch ran then): close it now
                    out.append((k, (ms(s[0]), ms(s[1]), s[2])))
                    s = [t, t, v]
            elif (s is not None) or (clock is not None and t < clock):
                if self.late != "join":
                    late += 1
                    if self.late == "dlq" and context.late is not None:
                        why = (
                            f"batch {_fmt(t)} is older than its key's open session "
                            f"(last record at {_fmt(s[1])})"
                            if s is not None
                            else f"batch {_fmt(t)} is older than the newest batch run "
                            f"({_fmt(clock)}): its session may have been emitted"
                        )
                        context.late.append(((k, v), why))
                    continue
                s = [t, t, v] if s is None else [min(s[0], t), s[1], fn(s[2], v)]
            else:
                s = [t, t, v]
            store.put((KEY, k), s)
            due[s[1] + gap].append(k)
        if late:
            self._late(late, t, context)
        for d, keys in due.items():
            bucket = store.get(("d", d)) or []
            store.put(("d", d), list(dict.fromkeys([*bucket, *keys])))
            if d not in meta["due"]:
                insort(meta["due"], d)
        while meta["due"] and meta["due"][0] <= now:
            d = meta["due"].pop(0)
            for k in store.get(("d", d)) or []:
                s = store.get((KEY, k))
                if s is not None and s[1] + gap == d:
                    out.append((k, (ms(s[0]), ms(s[1]), s[2])))
                    store.delete((KEY, k))
            store.delete(("d", d))
        meta["clock"] = now
        store.put(META, meta)
        return out
