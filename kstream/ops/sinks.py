"""Output operators: print, collect, user callbacks, Kafka topics."""

from __future__ import annotations

import sys
import threading
import time as _time
from collections.abc import Callable
from typing import Any

from kstream.graph import Batch, Operator
from kstream.ops.stateless import takes_time


def format_batch_time(t: int) -> str:
    seconds, ms = divmod(t, 1000)
    stamp = _time.strftime("%Y-%m-%d %H:%M:%S", _time.localtime(seconds))
    return f"{stamp}.{ms:03d}" if ms else stamp


class Pprint(Operator):
    """Spark's pprint: a header with the batch time, then the first `num` records."""

    kind = "pprint"
    is_sink = True

    def __init__(self, num: int = 10, out: Any = None):
        self.num = num
        self.out = out

    def apply(self, inputs, t):
        (x,) = inputs
        if x is None:
            return None
        out = self.out or sys.stdout
        lines = ["-" * 43, f"Time: {format_batch_time(t)}", "-" * 43]
        lines.extend(str(r) for r in x[: self.num])
        if len(x) > self.num:
            lines.append("...")
        print("\n".join(lines) + "\n", file=out, flush=True)
        return None


class Collected:
    """What `collect()` returns: `.batches` is a list of (time_seconds, records)."""

    def __init__(self) -> None:
        self.batches: list[tuple[float, Batch]] = []
        self._lock = threading.Lock()

    def add(self, t: float, records: Batch) -> None:
        with self._lock:
            self.batches.append((t, records))

    def records(self) -> Batch:
        """Every record of every batch, in batch order."""
        with self._lock:
            return [r for _, batch in self.batches for r in batch]


class Collect(Operator):
    kind = "collect"
    is_sink = True

    def __init__(self, target: Collected):
        self.target = target

    def apply(self, inputs, t):
        (x,) = inputs
        if x is not None:
            self.target.add(t / 1000, list(x))
        return None


class ForeachBatch(Operator):
    """foreach_batch(fn): fn(records) or fn(time_seconds, records), Spark's foreachRDD."""

    kind = "foreach_batch"
    is_sink = True

    def __init__(self, fn: Callable[..., Any]):
        self.fn = fn
        self.with_time = takes_time(fn)

    def apply(self, inputs, t):
        (x,) = inputs
        if x is not None:
            if self.with_time:
                self.fn(t / 1000, x)
            else:
                self.fn(x)
        return None


class To(Operator):
    """to(topic): the batch's records become Kafka records (pairs give key and value)."""

    kind = "to"
    is_sink = True

    def __init__(self, topic: str, key_serde: str, value_serde: str):
        self.topic = topic
        self.key_serde = key_serde
        self.value_serde = value_serde

    def apply(self, inputs, t):
        (x,) = inputs
        return x  # the worker produces what a sink returns

    def describe(self) -> str:
        return f"to({self.topic})"
