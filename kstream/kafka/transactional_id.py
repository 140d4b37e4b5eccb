"""The transactional id of an exactly-once worker, kept over its restarts
(kstream/delivery.py fences the previous incarnation with it)."""

from __future__ import annotations

import fcntl
import os
import uuid
from typing import IO


def claim_transactional_id(
    app_id: str, state_dir: str, group_instance_id: str | None
) -> tuple[str, IO[str] | None]:
    """A transactional id that a restarted worker takes over (so it fences its previous
    incarnation and aborts that one's open transaction at once, instead of leaving
    read_committed readers stuck until the transaction times out).

    From the static member id if there is one; otherwise an id kept in the state dir,
    one per worker sharing that dir: each holds a lock on its slot (the returned open
    file) while it runs."""
    if group_instance_id:
        return f"{app_id}-{group_instance_id}", None
    root = os.path.join(state_dir, app_id)
    os.makedirs(root, exist_ok=True)
    slot = 0
    while True:
        handle = open(os.path.join(root, f"worker-{slot}.id"), "a+")  # noqa: SIM115
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            slot += 1
            continue
        handle.seek(0)
        known = handle.read().strip()
        if not known:
            known = uuid.uuid4().hex[:12]
            handle.write(known)
            handle.flush()
        return f"{app_id}-{known}", handle
