"""The batch timeline: the last N batches, current lag and state sizes, for the live page.

The batch loop writes, the HTTP server thread reads; every method takes one lock, and
`snapshot()` returns plain data that is safe to hand to `json.dumps`.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Batch:
    seq: int  # 1 for the first batch ever added, counting on past the ring's capacity
    batch_time: float
    records: int
    processing_seconds: float | None
    scheduling_delay_seconds: float | None
    input_rate: float | None  # records per second of batch interval


@dataclass(frozen=True)
class Totals:
    """Running totals since the timeline was created (they survive the ring's eviction)."""

    batches: int
    records: int
    processing_seconds: float


def _finite(x: float) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


class Timeline:
    def __init__(self, capacity: int = 300) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self._lock = threading.Lock()
        self._batches: deque[Batch] = deque(maxlen=capacity)
        self._lag: dict[tuple[str, int], int] = {}
        self._state: dict[str, int] = {}
        self._totals = Totals(0, 0, 0.0)

    def add(
        self,
        batch_time: float,
        records: int,
        processing_seconds: float,
        scheduling_delay_seconds: float,
        input_rate: float,
    ) -> None:
        """Record a completed batch. Non-finite numbers are kept as None (null in JSON)."""
        with self._lock:
            t = self._totals
            batch = Batch(
                seq=t.batches + 1,
                batch_time=float(batch_time),
                records=int(records),
                processing_seconds=_finite(processing_seconds),
                scheduling_delay_seconds=_finite(scheduling_delay_seconds),
                input_rate=_finite(input_rate),
            )
            self._batches.append(batch)
            self._totals = Totals(
                t.batches + 1,
                t.records + batch.records,
                t.processing_seconds + (batch.processing_seconds or 0.0),
            )

    def set_lag(self, topic: str, partition: int, lag: int) -> None:
        with self._lock:
            self._lag[(topic, int(partition))] = int(lag)

    def forget_partition(self, topic: str, partition: int) -> None:
        """Drop a revoked partition from the lag table."""
        with self._lock:
            self._lag.pop((topic, int(partition)), None)

    def set_state_size(self, store: str, keys: int) -> None:
        with self._lock:
            self._state[store] = int(keys)

    # -- reading -------------------------------------------------------------------

    def totals(self) -> Totals:
        with self._lock:
            return self._totals

    def batches_since(self, seq: int) -> list[Batch]:
        """The batches still in the ring whose `seq` is greater than `seq`, oldest first."""
        with self._lock:
            return [b for b in self._batches if b.seq > seq]

    def total_lag(self) -> int:
        with self._lock:
            return sum(self._lag.values())

    def snapshot(self) -> dict:
        with self._lock:
            batches = [asdict(b) for b in self._batches]
            lag = [
                {"topic": topic, "partition": partition, "lag": n}
                for (topic, partition), n in sorted(self._lag.items())
            ]
            state = [{"store": store, "keys": n} for store, n in sorted(self._state.items())]
            totals = asdict(self._totals)
        return {
            "capacity": self.capacity,
            "batches": batches,
            "last_batch_time": batches[-1]["batch_time"] if batches else None,
            "lag": lag,
            "total_lag": sum(row["lag"] for row in lag),
            "state": state,
            "totals": totals,
        }
