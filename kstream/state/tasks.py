"""The stores of a stage's stateful operators, one per operator and task (partition).

A task's stores are opened and restored from their changelogs when its partition is
assigned, before any of its batches run, a slice per loop iteration while the worker's
other tasks go on; their changes are produced to the changelog with the batch and written
to RocksDB once Kafka has acknowledged them (once the transaction committed).
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kstream.codec import Codec
from kstream.dead_letters import operator_name
from kstream.errors import ConfigError
from kstream.graph import Node
from kstream.partitioning import owner
from kstream.state.changelog import ChangelogReader, changelog_topic
from kstream.state.rocks import RocksStore, StoreMemory

log = logging.getLogger(__name__)


def check_state_dir(state_dir: str, app_id: str) -> None:
    """Make the app's directory under the state dir and write a file there: a ConfigError
    naming --state-dir at start, not a traceback when the first store opens."""
    root = os.path.join(state_dir, app_id)
    try:
        os.makedirs(root, exist_ok=True)
        tempfile.TemporaryFile(dir=root).close()
    except OSError as e:
        raise ConfigError(
            f"--state-dir {state_dir!r}: cannot write to {root} ({e.strerror})"
        ) from None


@dataclass
class Restore:
    """One store being rebuilt from its changelog partition."""

    node: Node
    partition: int
    store: RocksStore
    start: int  # the changelog offset it started from
    records: int = 0
    done: bool = False
    began: float = field(default_factory=time.monotonic)


def store_shape(node: Node) -> str:
    """What a store's layout depends on: its operator's kind and parameters (a window's
    length and slide), not what runs upstream of it, so stateless steps added or removed
    there keep the state (the store is found by the operator's name)."""
    return node.op.describe()


class TaskStores:
    def __init__(
        self,
        app_id: str,
        state_dir: str,
        nodes: dict[str, list[Node]],
        shapes: dict[Node, str],
        codecs: dict[Node, Codec],
        brokers: str,
        kafka: dict[str, Any],
        on_restored: Callable[[str, float, int], None],
        partitions: dict[str, int],
        memory_mb: int,
    ):
        self.app_id = app_id
        self.root = os.path.join(state_dir, app_id)
        self.nodes = nodes  # input (repartition) topic -> the stateful nodes it feeds
        self.shapes = shapes
        self.codecs = codecs  # each store's format, and its changelog's
        self.brokers = brokers
        self.kafka = kafka
        self.on_restored = on_restored
        self.partitions = partitions  # input topic -> its partition count
        self.memory = StoreMemory(memory_mb)  # shared by all the stores
        self.open: dict[tuple[Node, int], RocksStore] = {}
        self.to_restore: list[tuple[str, int]] = []  # tasks whose stores are not opened yet
        self.reader = ChangelogReader(
            brokers, kafka, {t: codecs[n] for t, n in self.changelogs().items()}
        )
        self.restores: dict[tuple[str, int], Restore] = {}  # by changelog partition
        self.waiting: dict[tuple[str, int], set[tuple[str, int]]] = {}  # task -> its restores

    def changelogs(self) -> dict[str, Node]:
        return {changelog_topic(self.app_id, n.name): n for ns in self.nodes.values() for n in ns}

    def has_state(self, topic: str) -> bool:
        return topic in self.nodes

    @property
    def restoring(self) -> int:
        """How many tasks wait for their stores (queued or being restored)."""
        return len(self.to_restore) + len(self.waiting)

    def assign(self, tps: list[tuple[str, int]]) -> None:
        """Queue the stores of newly assigned tasks for restoring (see `restore`)."""
        self.to_restore.extend(tp for tp in tps if tp[0] in self.nodes)

    def revoke(self, tps: list[tuple[str, int]]) -> None:
        for topic, p in tps:
            self.to_restore = [tp for tp in self.to_restore if tp != (topic, p)]
            keys = self.waiting.pop((topic, p), set())
            self.reader.remove(list(keys))
            for key in keys:
                self.restores.pop(key).store.close()
            for node in self.nodes.get(topic, ()):
                store = self.open.pop((node, p), None)
                if store is not None:
                    store.close()

    def restore(self, budget: float) -> dict[tuple[str, int], tuple[int, int] | None]:
        """Advance the restores for about `budget` seconds: open the stores of newly
        assigned tasks and apply their changelogs from where each store stands (all of
        it on a new machine). Returns the tasks whose stores are now complete, each with
        how far its stores held its input: replays up to there are skipped, since their
        effect (and outputs) exist."""
        pending, self.to_restore = self.to_restore, []
        for topic, p in pending:
            keys = set()
            for node in self.nodes[topic]:
                store = self._open(node, p)
                key = store.changelog_key
                self.restores[key] = Restore(node, p, store, store.changelog_next())
                keys.add(key)
            self.waiting[(topic, p)] = keys
            self.reader.add({key: self.restores[key].start for key in keys})
        records, ended = self.reader.read(budget)
        for key, recs in records.items():
            r = self.restores[key]
            at = ended[key] if key in ended else self.reader.next[key]
            r.records += r.store.apply_changelog(recs, at)
        for key, next_offset in ended.items():
            r = self.restores[key]
            if key not in records:
                r.store.apply_changelog((), next_offset)
            r.done = True
        finished: dict[tuple[str, int], tuple[int, int] | None] = {}
        for task, keys in list(self.waiting.items()):
            if not all(self.restores[k].done for k in keys):
                continue
            del self.waiting[task]
            through = []
            for key in keys:
                r = self.restores.pop(key)
                seconds = time.monotonic() - r.began
                log.info(
                    "restored %s[%d] from offset %d: %d records in %.2fs",
                    r.node.name,
                    r.partition,
                    r.start,
                    r.records,
                    seconds,
                )
                self.on_restored(r.node.name, seconds, r.records)
                self.open[(r.node, r.partition)] = r.store
                through.append(r.store.batch_through())
            finished[task] = None if None in through else min(through)  # type: ignore[type-var]
        return finished

    def _open(self, node: Node, p: int) -> RocksStore:
        path = os.path.join(self.root, node.name, str(p))
        store = RocksStore(
            path,
            (changelog_topic(self.app_id, node.name), p),
            self.memory,
            self.codecs[node],
            operator_name(node),
        )
        shape = store.shape()
        if shape is None:
            store.set_shape(self.shapes[node])
        elif shape != self.shapes[node]:
            store.close()
            raise ConfigError(
                f"state store {path} was written by a different operator ({shape!r}, now "
                f"{self.shapes[node]!r}): run `kstream reset {self.app_id} --operator "
                f"{node.name}` to start its state over"
            )
        return store

    def for_batch(self, topic: str, p: int, t: int, position: int) -> dict[Node, RocksStore]:
        """Task topic[p]'s stores, by the operator each serves, marked as running batch t
        with the task's input read up to `position`."""
        stores = {}
        for node in self.nodes.get(topic, ()):
            store = stores[node] = self.open[(node, p)]
            store.processed(t, position)
        return stores

    def owns(self, topic: str, p: int) -> Callable[[Any], bool]:
        """Which keys task topic[p]'s stores hold: its partition's (the shuffle's)."""
        return owner(p, self.partitions[topic])

    def store_of(self, node: Node, p: int) -> RocksStore:
        return self.open[(node, p)]

    def sizes(self) -> dict[str, int]:
        """Keys held per operator's store, over this worker's tasks (RocksDB's estimate)."""
        out: dict[str, int] = {n.name: 0 for ns in self.nodes.values() for n in ns}
        for (node, _), store in self.open.items():
            out[node.name] += len(store)
        return out

    def close(self) -> None:
        """Close every store (restored or not); queued restores are forgotten."""
        for store in self.open.values():
            store.close()
        for r in self.restores.values():
            r.store.close()
        self.open.clear()
        self.restores.clear()
        self.waiting.clear()
        self.to_restore.clear()
        self.reader.close()
