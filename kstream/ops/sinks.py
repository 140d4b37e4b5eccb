"""Output operators: print, collect, user callbacks, Kafka topics."""

from __future__ import annotations

import logging
import sys
import threading
import time as _time
from collections.abc import Callable
from typing import Any

from kstream.dead_letters import error_type
from kstream.errors import ConfigError
from kstream.graph import Batch, Operator
from kstream.ops.stateless import takes_time

log = logging.getLogger(__name__)
MAX_BACKOFF = 30.0  # seconds: the longest wait between two calls of a failing output function


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
    """foreach_batch(fn): fn(records) or fn(time_seconds, records), Spark's foreachRDD.

    fn usually writes to another system, where a dropped connection or a timeout is as
    likely as a bad batch. When fn raises, it is called again, up to `retries` times,
    after `backoff` seconds, doubling each time up to MAX_BACKOFF; each retry is logged.
    Every Exception is retried: which ones are transient only fn's author knows, and
    Spark too retries a failed task whatever failed it. Only the last error counts (in a
    worker the batch is then poison, kstream/poison.py)."""

    kind = "foreach_batch"
    is_sink = True
    sleep = staticmethod(_time.sleep)  # run_batches' virtual clock does not wait

    def __init__(self, fn: Callable[..., Any], retries: int = 3, backoff: float = 1.0):
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ConfigError(f"foreach_batch: retries={retries!r}: must be a whole number >= 0")
        if isinstance(backoff, bool) or not isinstance(backoff, int | float) or backoff < 0:
            raise ConfigError(f"foreach_batch: backoff={backoff!r}: must be >= 0 seconds")
        self.fn = fn
        self.with_time = takes_time(fn)
        self.retries = retries
        self.backoff = backoff
        self.name = self.kind  # for the log; foreach_batch() names it after its node

    def apply(self, inputs, t):
        (x,) = inputs
        if x is None:
            return None
        args = (t / 1000, x) if self.with_time else (x,)
        attempt = 0
        while True:
            try:
                self.fn(*args)
                return None
            except Exception as e:
                if attempt == self.retries:
                    raise
                delay = min(MAX_BACKOFF, self.backoff * 2**attempt)
                attempt += 1
                log.warning(
                    "%s raised %s: %s (attempt %d of %d); trying again in %gs",
                    self.name,
                    error_type(e),
                    e,
                    attempt,
                    self.retries + 1,
                    delay,
                )
                self.sleep(delay)


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
