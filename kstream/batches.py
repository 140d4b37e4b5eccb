"""Records read but not yet processed, by batch and partition, and the offsets to commit."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from kstream.clocks import TP


class OpenBatches:
    def __init__(self) -> None:
        self.records: dict[int, dict[TP, list[Any]]] = {}
        self.first: dict[TP, dict[int, int]] = {}  # partition -> batch -> its first offset
        self.position: dict[TP, int] = {}  # next offset to read, per partition

    def bucket(self, t: int, tp: TP, offset: int, make: Callable[[], Any] = list) -> Any:
        """The container (from `make`) that collects partition tp's records of batch t."""
        batch = self.records.get(t)
        if batch is None:
            batch = self.records[t] = {}
        records = batch.get(tp)
        if records is None:
            records = batch[tp] = make()
            self.first.setdefault(tp, {}).setdefault(t, offset)
        return records

    def times(self) -> list[int]:
        return sorted(self.records)

    def times_of(self, tp: TP) -> list[int]:
        return sorted(self.first.get(tp, ()))

    def take(self, t: int, tps: tuple[TP, ...] | None = None) -> dict[TP, list[Any]]:
        """Remove and return batch t's records: of every partition, or only of `tps`."""
        if tps is None:
            batch = self.records.pop(t, {})
        else:
            held = self.records.get(t, {})
            batch = {tp: held.pop(tp) for tp in tps if tp in held}
            if not held:
                self.records.pop(t, None)
        for tp in batch:
            self.first[tp].pop(t, None)
        return batch

    def drop(self, tps: Iterable[TP]) -> None:
        """Forget revoked partitions: their uncommitted records go to the next owner."""
        gone = set(tps)
        for batch in self.records.values():
            for tp in gone & batch.keys():
                del batch[tp]
        for tp in gone:
            self.first.pop(tp, None)
            self.position.pop(tp, None)

    def commit_offsets(self) -> dict[TP, int]:
        """Per partition: the lowest offset not yet in a processed batch (docs/design.md §5)."""
        out = {}
        for tp, pos in self.position.items():
            firsts = self.first.get(tp)
            out[tp] = min(firsts.values()) if firsts else pos
        return out
