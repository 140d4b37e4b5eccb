"""Pipelines over queue streams, as the unit tests build and read them."""

from __future__ import annotations

import kstream


def queue(batches, interval=1.0):
    """An app and its queue stream of `batches`, one list of records per batch."""
    app = kstream.App("t", batch_interval=interval)
    return app, app.queue_stream(batches)


def dicts(collected):
    """Pair batches as (time, {key: value}), failing on a key that appears twice."""
    out = []
    for t, records in collected.batches:
        keys = [k for k, _ in records]
        assert len(keys) == len(set(keys)), f"duplicate keys in batch {t}: {records}"
        out.append((t, dict(records)))
    return out
