"""Liveness and readiness of a worker, for `/healthz` and `/readyz`.

Liveness: the batch loop calls `beat()` on every iteration; the worker is alive while the
last beat is at most `stall_after` seconds old. Creating the `Health` counts as the first
beat, so a worker gets `stall_after` seconds to reach its loop.

Readiness: the worker says when it is ready (partitions assigned, stores restored, broker
reachable) and why not, through `set_ready`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class Health:
    def __init__(self, stall_after: float, clock: Callable[[], float] = time.monotonic) -> None:
        if stall_after <= 0:
            raise ValueError("stall_after must be positive")
        self.stall_after = float(stall_after)
        self._clock = clock
        self._lock = threading.Lock()
        self._last_beat = clock()
        self._beats = 0
        self._ready = False
        self._reason = "starting"

    def beat(self) -> None:
        with self._lock:
            self._last_beat = self._clock()
            self._beats += 1

    def seconds_since_beat(self) -> float:
        with self._lock:
            return max(0.0, self._clock() - self._last_beat)

    def alive(self) -> bool:
        return self.seconds_since_beat() <= self.stall_after

    def set_ready(self, ready: bool, reason: str = "") -> None:
        with self._lock:
            self._ready = bool(ready)
            self._reason = reason

    def ready(self) -> bool:
        with self._lock:
            return self._ready

    def liveness(self) -> dict:
        """Body of `/healthz`; `alive` decides 200 or 503."""
        since = self.seconds_since_beat()
        alive = since <= self.stall_after
        with self._lock:
            beats = self._beats
        return {
            "alive": alive,
            "reason": (
                "ok"
                if alive
                else f"batch loop stalled: no beat for {since:.1f}s "
                f"(stall_after={self.stall_after:g}s)"
            ),
            "seconds_since_beat": round(since, 3),
            "stall_after": self.stall_after,
            "beats": beats,
        }

    def readiness(self) -> dict:
        """Body of `/readyz`; `ready` decides 200 or 503."""
        with self._lock:
            ready, reason = self._ready, self._reason
        return {"ready": ready, "reason": reason or ("ok" if ready else "not ready")}

    def status(self) -> dict:
        """Both, for the live page."""
        return {"liveness": self.liveness(), "readiness": self.readiness()}
