"""Says where a stuck batch loop is: a hung user function must be reported, not silent.

The loop beats once per iteration (see health.py). When no beat has come for
`warn_after` seconds, a WARNING names the code the loop's thread is in (the innermost
frame outside kstream, i.e. the user's function, first), and repeats while it stays stuck.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import traceback

from kstream.observe.health import Health

log = logging.getLogger("kstream.watchdog")
KSTREAM_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def where(thread_id: int, depth: int = 8) -> str:
    """The innermost frames of a thread, user code marked, as one readable block."""
    frame = sys._current_frames().get(thread_id)
    if frame is None:
        return "(thread gone)"
    frames = traceback.extract_stack(frame)[-depth:]
    user = [f for f in frames if not os.path.abspath(f.filename).startswith(KSTREAM_DIR)]
    lines = [f"  {f.filename}:{f.lineno} in {f.name}" for f in reversed(frames)]
    head = f"{user[-1].filename}:{user[-1].lineno} in {user[-1].name}" if user else lines[0]
    return f"{head.strip()}\n" + "\n".join(lines)


class Watchdog:
    def __init__(self, health: Health, warn_after: float, thread_id: int):
        self.health = health
        self.warn_after = warn_after
        self.thread_id = thread_id
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kstream-watchdog", daemon=True)
        self.warnings = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()

    def _run(self) -> None:
        warned_at = 0.0  # how stuck the loop was at the last warning
        period = min(1.0, self.warn_after / 4)
        while not self._stopped.wait(period):
            since = self.health.seconds_since_beat()
            if since < warned_at:  # it moved on since
                warned_at = 0.0
            if since >= self.warn_after and since - warned_at >= self.warn_after:
                warned_at = since
                self.warnings += 1
                log.warning(
                    "the batch loop has been busy for %.0fs, in %s",
                    since,
                    where(self.thread_id),
                )
