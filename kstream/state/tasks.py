"""The stores of a stage's stateful operators, one per operator and task (partition).

A task's stores are opened and restored from their changelogs when its partition is
assigned, before any of its batches run; their changes are produced to the changelog with
the batch and written to RocksDB once Kafka has acknowledged them.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from typing import Any

from kstream.errors import ConfigError
from kstream.graph import Node
from kstream.ops.stateful import owner
from kstream.state.changelog import changelog_topic, read_changelogs
from kstream.state.rocks import RocksStore

log = logging.getLogger(__name__)


def store_shape(node: Node) -> str:
    """What a store's contents depend on: its operator and everything upstream of it."""
    seen: dict[int, Node] = {}
    stack = [node]
    while stack:
        n = stack.pop()
        if n.id not in seen:
            seen[n.id] = n
            stack.extend(n.parents)
    return " <- ".join(seen[i].op.describe() for i in sorted(seen, reverse=True))


class TaskStores:
    def __init__(
        self,
        app_id: str,
        state_dir: str,
        nodes: dict[str, list[Node]],
        shapes: dict[Node, str],
        brokers: str,
        kafka: dict[str, Any],
        on_restored: Callable[[str, float, int], None],
        partitions: dict[str, int],
    ):
        self.app_id = app_id
        self.root = os.path.join(state_dir, app_id)
        self.nodes = nodes  # input (repartition) topic -> the stateful nodes it feeds
        self.shapes = shapes
        self.brokers = brokers
        self.kafka = kafka
        self.on_restored = on_restored
        self.partitions = partitions  # input topic -> its partition count
        self.open: dict[tuple[Node, int], RocksStore] = {}
        self.to_restore: list[tuple[str, int]] = []

    def changelogs(self) -> dict[str, Node]:
        return {changelog_topic(self.app_id, n.name): n for ns in self.nodes.values() for n in ns}

    def assign(self, tps: list[tuple[str, int]]) -> None:
        self.to_restore.extend(tp for tp in tps if tp[0] in self.nodes)

    def revoke(self, tps: list[tuple[str, int]]) -> None:
        for topic, p in tps:
            self.to_restore = [tp for tp in self.to_restore if tp != (topic, p)]
            for node in self.nodes.get(topic, ()):
                store = self.open.pop((node, p), None)
                if store is not None:
                    store.close()

    def restore_assigned(self) -> dict[tuple[str, int], tuple[int, int]]:
        """Open and restore the stores of newly assigned partitions, all changelogs read
        by one consumer. Returns, per partition, how far its stores already held the
        input: replays up to there are skipped, their effect (and outputs) exist."""
        pending, self.to_restore = self.to_restore, []
        opened = {
            (node, p): self._open(node, p) for topic, p in pending for node in self.nodes[topic]
        }
        began = time.monotonic()
        starts = {store.changelog_key: store.changelog_next() for store in opened.values()}
        logs = read_changelogs(self.brokers, self.kafka, starts)
        seconds = time.monotonic() - began
        for (node, p), store in opened.items():
            records, next_offset = logs[store.changelog_key]
            n = store.apply_changelog(records, next_offset)
            log.info(
                "restored %s[%d] from offset %d: %d records (%.2fs for %d stores)",
                node.name,
                p,
                starts[store.changelog_key],
                n,
                seconds,
                len(opened),
            )
            self.on_restored(node.name, seconds, n)
            self.open[(node, p)] = store
        held = {}
        for topic, p in pending:
            through = [self.open[(node, p)].batch_through() for node in self.nodes[topic]]
            if through and None not in through:
                held[(topic, p)] = min(through)  # type: ignore[type-var]
        return held

    def _open(self, node: Node, p: int) -> RocksStore:
        path = os.path.join(self.root, node.name, str(p))
        store = RocksStore(path, (changelog_topic(self.app_id, node.name), p))
        shape = store.shape()
        if shape is None:
            store.set_shape(self.shapes[node])
        elif shape != self.shapes[node]:
            store.close()
            raise ConfigError(
                f"state store {path} was written by a different pipeline "
                f"({shape!r}, now {self.shapes[node]!r}): run `kstream reset` for this app "
                "to start its state over"
            )
        return store

    def bind(self, topic: str, p: int, t: int, position: int) -> list[RocksStore]:
        """Point the operators fed by topic[p] at that task's stores, for batch t."""
        stores = []
        for node in self.nodes.get(topic, ()):
            store = self.open[(node, p)]
            node.op.bind(store, owner(p, self.partitions[topic]))  # type: ignore[attr-defined]
            store.processed(t, position)
            stores.append(store)
        return stores

    def store_of(self, node: Node, p: int) -> RocksStore:
        return self.open[(node, p)]

    def close(self) -> None:
        for store in self.open.values():
            store.close()
        self.open.clear()
