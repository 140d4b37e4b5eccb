"""Run a pipeline in one process over queue and socket streams: virtual or wall clock."""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

from kstream.codec import codecs
from kstream.dead_letters import operator_name
from kstream.errors import ConfigError
from kstream.graph import Node, evaluate, require_output
from kstream.ops.sinks import ForeachBatch
from kstream.ops.sources import SocketSource
from kstream.ops.stateful import BatchContext, Stateful
from kstream.state.memory import MemoryStore

if TYPE_CHECKING:
    from kstream.builder import Pipeline

log = logging.getLogger(__name__)


def _no_wait(seconds: float) -> None:
    """A wait on the virtual clock, which moves only from batch to batch."""


class LocalRunner:
    """One process, every operator in graph order; the shuffle nodes only combine."""

    def __init__(self, app: Pipeline):
        if app.uses_kafka():
            raise ConfigError(
                "this app reads Kafka topics: run it with `kstream worker`, or use "
                "app.queue_stream() to test the pipeline without a broker"
            )
        self.app = app
        self.nodes = app.graph.ordered()
        require_output(self.nodes)
        self.virtual_batches = 0
        by_serde = codecs()
        # one in-memory store per operator that keeps state, for every batch; no
        # dead-letter topic for its late records
        self.contexts: dict[Node, BatchContext] = {}
        for node in self.nodes:
            if isinstance(node.op, Stateful):
                codec = by_serde[node.op.serde or app.settings.internal_serde]
                self.contexts[node] = BatchContext(MemoryStore(codec, operator_name(node)))

    def run_batch(self, t: int) -> None:
        """Evaluate batch t, then commit its state changes, as a worker does once the
        batch's outputs are acknowledged (docs/design.md §5)."""
        evaluate(self.nodes, t, {}, self.contexts)
        for context in self.contexts.values():
            context.store.commit(None)

    def run_virtual(self, n: int) -> None:
        if any(isinstance(s.op, SocketSource) for s in self.app.graph.sources()):
            raise ConfigError("socket streams need the wall clock: use app.run()")
        waiting = [node.op for node in self.nodes if isinstance(node.op, ForeachBatch)]
        for op in waiting:  # retries back off on the virtual clock: no wait
            op.sleep = _no_wait
        try:
            for _ in range(n):
                self.virtual_batches += 1
                self.run_batch(self.virtual_batches * self.app.interval_ms)
        finally:
            for op in waiting:
                del op.sleep

    def run_wall(self, stop: threading.Event, timeout: float | None) -> None:
        sockets = [s.op for s in self.app.graph.sources() if isinstance(s.op, SocketSource)]
        for s in sockets:
            s.start()
        interval = self.app.interval_ms
        deadline = None if timeout is None else time.time() + timeout
        t = (int(time.time() * 1000) // interval + 1) * interval
        try:
            while not stop.is_set():
                wait = t / 1000 - time.time()
                if deadline is not None and time.time() + max(wait, 0) > deadline:
                    break
                if wait > 0 and stop.wait(wait):
                    break
                self.run_batch(t)
                t += interval
        finally:
            for s in sockets:
                s.stop()
