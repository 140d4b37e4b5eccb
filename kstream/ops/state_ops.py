"""State by key across batches: update_state_by_key and map_with_state (Spark's rules).

Both read through a BY_KEY shuffle, so the batch context's store holds the keys of one
partition; every piece of state lives in it (see kstream.ops.stateful for the layout).
"""

from __future__ import annotations

import inspect
from bisect import insort
from collections.abc import Callable, Iterable
from typing import Any

from kstream.graph import Batch, Operator
from kstream.ops.combine import Grouping
from kstream.ops.stateful import KEY, META, BatchContext, Stateful, keyed_items, ms

# Values a state function may return unchanged without the store being written again (a
# changelog record saved); anything mutable is written back, as it may have been changed
# in place.
_IMMUTABLE = (int, float, str, bytes, bool, type(None))


def _seed(store, initial: list[tuple[Any, Any]] | None, owns, entry) -> list[Any]:
    """Initial state, put once per store (the flag is in the store, so a restored or
    re-opened store is not seeded twice), only the keys of this store's partition.
    Returns the keys seeded now."""
    if initial is None or store.get("seeded"):
        return []
    seeded = {}
    for k, s in initial:
        if s is not None and owns(k):
            store.put((KEY, k), entry(s))
            seeded[k] = None
    store.put("seeded", True)
    return list(seeded)


class UpdateStateByKey(Stateful):
    """fn(new_values, state) -> state | None for every key with new values or a state;
    None deletes the key; every key's (key, state) is emitted every batch."""

    kind = "update_state_by_key"
    partial_streams = True

    def __init__(
        self,
        fn: Callable[[list[Any], Any], Any],
        initial: list[tuple] | None,
        pre_combined: bool = True,
    ):
        self.fn = fn
        self.initial = initial
        # a task's values of a key cross the shuffle as one record, (key, [values]);
        # read without a shuffle (already by key), it groups its input itself
        self.grouping = Grouping(map_side_combine=True)
        self.pre_combined = pre_combined

    def partial(self, batch: Batch) -> Batch:
        return self.grouping.partial(batch)

    def apply_in(self, context: BatchContext, inputs, t):
        (x,) = inputs
        if x is None:
            return None
        store, fn = context.store, self.fn
        _seed(store, self.initial, context.owns, lambda s: s)
        grouped = x if self.pre_combined else self.partial(x)
        groups = dict(self.grouping.merge(grouped))  # each upstream task's (key, [values])
        out: Batch = []
        for k, state in list(keyed_items(store)):
            values = groups.pop(k, [])
            new = fn(values, state)
            if new is None:
                store.delete((KEY, k))
                continue
            same = type(new) is type(state) and type(new) in _IMMUTABLE and new == state
            if values or not same:
                store.put((KEY, k), new)
            out.append((k, new))
        for k, values in groups.items():
            new = fn(values, None)
            if new is not None:
                store.put((KEY, k), new)
                out.append((k, new))
        return out


# -- map_with_state -------------------------------------------------------------------
class StateSpec:
    """What map_with_state does: StateSpec(fn, timeout=None, initial=None).

    fn(key, value, state) returns the mapped record (every call's result is emitted, None
    included, as in Spark); fn(batch_time, key, value, state) returns the record or None
    for no record (Spark's Option). `timeout` (seconds): a key without records for that
    long is called once more with value None and `state.is_timing_out()`, then removed.
    `initial`: (key, state) pairs, the state before the first batch.
    Spark's builder works too: StateSpec.function(fn).timeout(10).initialState(pairs).
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        timeout: float | None = None,
        initial: Iterable[tuple[Any, Any]] | None = None,
        num_partitions: int | None = None,
    ):
        self.fn = fn
        self.timeout_seconds = timeout
        self.initial = None if initial is None else list(initial)
        self.partitions = num_partitions

    @classmethod
    def function(cls, fn: Callable[..., Any]) -> StateSpec:
        return cls(fn)

    def timeout(self, seconds: float) -> StateSpec:
        self.timeout_seconds = seconds
        return self

    def initial_state(self, pairs: Iterable[tuple[Any, Any]]) -> StateSpec:
        self.initial = list(pairs)
        return self

    def num_partitions(self, n: int) -> StateSpec:
        self.partitions = n
        return self

    initialState = initial_state
    numPartitions = num_partitions


class State:
    """The state of one key in a map_with_state call (Spark's State)."""

    __slots__ = ("_defined", "_removed", "_timing_out", "_updated", "_value")

    def __init__(self, entry: list[Any] | None, timing_out: bool = False):
        self._defined = entry is not None
        self._value = entry[0] if entry is not None else None
        self._updated = self._removed = False
        self._timing_out = timing_out

    def exists(self) -> bool:
        return self._defined

    def get(self) -> Any:
        if not self._defined:
            raise LookupError("State is not set")
        return self._value

    def get_option(self) -> Any:
        """The state, or None when there is none."""
        return self._value if self._defined else None

    def update(self, value: Any) -> None:
        if self._removed:
            raise ValueError("Cannot update the state after it has been removed")
        if self._timing_out:
            raise ValueError("Cannot update the state that is timing out")
        self._value, self._defined, self._updated = value, True, True

    def remove(self) -> None:
        if self._timing_out:
            raise ValueError("Cannot remove the state that is timing out")
        if self._removed:
            raise ValueError("Cannot remove the state that has already been removed")
        self._value, self._defined, self._updated, self._removed = None, False, False, True

    def is_timing_out(self) -> bool:
        return self._timing_out

    getOption = get_option
    isTimingOut = is_timing_out

    def __repr__(self) -> str:
        return f"State({self._value!r})" if self._defined else "State(<none>)"


def positional_arity(fn: Callable[..., Any]) -> int | None:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return None
    return sum(1 for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD))


MAPPED, SNAPSHOT = 0, 1


class MapWithState(Stateful):
    """Spark's mapWithState. Store: ("k", key) -> [state, batch time of its last record
    or update] (a list: msgpack writes it without an extension type); with a timeout
    also ("t", time) -> keys written at that time, so idle keys are found without a
    scan, and META -> the sorted times that have such a list.

    Emits tagged records, (MAPPED, record) and, with `snapshots` (state_snapshots() was
    asked for), (SNAPSHOT, (key, state)); two derived nodes split them.
    """

    kind = "map_with_state"

    def __init__(self, spec: StateSpec, timeout_ms: int | None, snapshots: bool = False):
        self.spec = spec
        self.fn = spec.fn
        self.with_time = positional_arity(spec.fn) == 4
        self.timeout_ms = timeout_ms
        self.initial = spec.initial
        self.snapshots = snapshots

    def with_snapshots(self) -> MapWithState:
        """The same operator, emitting every (key, state) after each batch as well."""
        twin = MapWithState(self.spec, self.timeout_ms, snapshots=True)
        twin.serde = self.serde
        return twin

    def _call(self, t: int, k: Any, v: Any, state: State, out: Batch) -> None:
        if self.with_time:
            r = self.fn(ms(t), k, v, state)
            if r is not None:
                out.append((MAPPED, r))
        else:
            out.append((MAPPED, self.fn(k, v, state)))

    def apply_in(self, context: BatchContext, inputs, t):
        (x,) = inputs
        if x is None:
            return None
        store, timeout = context.store, self.timeout_ms
        seeded = _seed(store, self.initial, context.owns, lambda s: [s, t])
        keys = list(dict.fromkeys([*(k for k, _ in x), *seeded]))
        entries = dict(zip(keys, store.get_many([(KEY, k) for k in keys]), strict=True))
        out: Batch = []
        written = seeded  # keys written at t (Spark: seeded states count as updated now)
        for k, v in x:
            state = State(entries[k])
            self._call(t, k, v, state, out)
            if state._removed:
                entries[k] = None
                store.delete((KEY, k))
            elif state._updated or (state._defined and timeout is not None):
                entries[k] = [state._value, t]
                store.put((KEY, k), entries[k])
                written.append(k)
        if timeout is not None:
            self._time_out(store, t, timeout, entries, written, out)
        if self.snapshots:
            out.extend((SNAPSHOT, (k, e[0])) for k, e in keyed_items(store))
        return out

    def _time_out(self, store, t, timeout, entries, written, out) -> None:
        meta = store.get(META) or []
        changed = False
        live = [k for k in dict.fromkeys(written) if (e := entries[k]) is not None and e[1] == t]
        if live:
            bucket = store.get(("t", t)) or []
            store.put(("t", t), list(dict.fromkeys([*bucket, *live])))
            if t not in meta:
                insort(meta, t)
                changed = True
        threshold = t - timeout  # idle for at least `timeout`: last written <= threshold
        while meta and meta[0] <= threshold:
            b = meta.pop(0)
            changed = True
            for k in store.get(("t", b)) or []:
                e = entries[k] if k in entries else store.get((KEY, k))
                if e is None or e[1] != b:
                    continue  # written again since, or removed
                self._call(t, k, None, State(e, timing_out=True), out)
                store.delete((KEY, k))
                entries[k] = None
            store.delete(("t", b))
        if changed:
            store.put(META, meta)


class Pick(Operator):
    """One of the two outputs of map_with_state: the mapped records or the snapshots."""

    def __init__(self, tag: int):
        self.tag = tag
        self.kind = "mapped" if tag == MAPPED else "state_snapshots"

    def apply(self, inputs, t):
        (x,) = inputs
        if x is None:
            return None
        tag = self.tag
        return [r for g, r in x if g == tag]
