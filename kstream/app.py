"""App: the settings, the sources and the pipeline graph of one streaming job."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

from kstream.builder import GraphBuilder
from kstream.dstream import DStream
from kstream.errors import ConfigError
from kstream.graph import Node, Operator
from kstream.local import LocalRunner
from kstream.names import check_app_id
from kstream.ops.sources import KafkaSource, QueueSource, SocketSource
from kstream.partitioning import KEYED_SOURCE
from kstream.serde import deserializer
from kstream.settings import Settings, interval_ms


class AppStarted(BaseException):
    """An app started (`app.run()`, `ssc.start()`) in a file that kstream is loading: the
    pipeline is defined by then, and loading must not run it (`kstream describe` of a
    socket stream would connect). A BaseException, so that the file's own
    `except Exception` does not catch it."""

    def __init__(self, app: App):
        super().__init__(app.app_id)
        self.app = app


class App:
    """A streaming job: `app.stream(...)` starts pipelines; `kstream worker` runs them."""

    loading = False  # kstream.loader is executing a pipeline file: see AppStarted

    def __init__(
        self, app_id: str, batch_interval: float = 1.0, brokers: str | None = None, **settings: Any
    ):
        self.app_id = check_app_id(app_id)
        self.interval_ms = interval_ms(batch_interval, "batch_interval")
        self.settings = Settings.from_kwargs(brokers=brokers, **settings)
        self.graph = GraphBuilder(self.interval_ms)
        self._stop = threading.Event()
        self._local: LocalRunner | None = None  # keeps the virtual clock across run_batches

    @property
    def batch_interval(self) -> float:
        return self.interval_ms / 1000

    # -- sources ---------------------------------------------------------------------
    def stream(
        self,
        topics: str | Iterable[str],
        key_serde: str = "str",
        value_serde: str = "str",
        keyed: bool = False,
    ) -> DStream:
        """Records of Kafka topics: their values, or `(key, value)` pairs with keyed=True."""
        names = [topics] if isinstance(topics, str) else list(topics)
        if not names or not all(isinstance(t, str) and t for t in names):
            raise ConfigError(f"stream(topics={topics!r}): give one or more topic names")
        deserializer(key_serde, "key_serde")
        deserializer(value_serde, "value_serde")
        return self._source(KafkaSource(names, keyed, key_serde, value_serde), keyed)

    def socket_text_stream(self, host: str, port: int) -> DStream:
        """Lines from a TCP server, batched by arrival time (Spark's socketTextStream)."""
        return self._source(SocketSource(host, int(port)), False)

    def queue_stream(
        self, batches: Iterable[Iterable[Any]], one_at_a_time: bool = True, default: Any = None
    ) -> DStream:
        """Batch k gets the k-th list, then empty batches: tests without a broker."""
        return self._source(QueueSource(batches, one_at_a_time, default), False)

    def union(self, *streams: DStream) -> DStream:
        first, *rest = streams
        return first.union(*rest)

    def _source(self, op: Operator, keyed: bool) -> DStream:
        partitioning = KEYED_SOURCE if keyed else None
        return DStream(self.graph, self.graph.add(op, (), partitioning))

    # -- graph -----------------------------------------------------------------------
    @property
    def nodes(self) -> list[Node]:
        return self.graph.nodes

    def ordered_nodes(self) -> list[Node]:
        return self.graph.ordered()

    def uses_kafka(self) -> bool:
        kinds = {isinstance(n.op, KafkaSource) for n in self.graph.sources()}
        if kinds == {True, False}:
            raise ConfigError(
                "an app reads either Kafka topics or local sources (queue/socket), not both"
            )
        return kinds == {True}

    # -- running ---------------------------------------------------------------------
    def run_batches(self, n: int) -> None:
        """Run n batches of the local sources on a virtual clock: no Kafka, no sleeping."""
        self.starting()
        if self._local is None or self._local.nodes != self.ordered_nodes():
            # a pipeline extended between calls gets a new runner on the same clock
            runner = LocalRunner(self)
            runner.virtual_batches = self._local.virtual_batches if self._local else 0
            self._local = runner
        self._local.run_virtual(n)

    def run(self, timeout: float | None = None) -> None:
        """Run until stop() (or timeout seconds): local sources on the wall clock."""
        self.starting()
        if self.uses_kafka():
            raise ConfigError(
                "this app reads Kafka topics: run it with `kstream worker`, which joins "
                "the consumer group"
            )
        LocalRunner(self).run_wall(self._stop, timeout)

    def stop(self) -> None:
        self._stop.set()

    def starting(self) -> None:
        """Where the app begins to run: a file being loaded stops here (AppStarted)."""
        if App.loading:
            raise AppStarted(self)

    def describe(self) -> dict[str, Any]:
        from kstream.plan import compile_plan

        return compile_plan(self).describe()
