"""PySpark Streaming's names, so a DStream program runs with only its imports changed.

    from kstream.compat import SparkContext, StreamingContext

DStreams answer to their camelCase names too (flatMap, reduceByKey, foreachRDD,
updateStateByKey, reduceByKeyAndWindow, ...); `StateSpec` is Scala's mapWithState spec,
builder included (`StateSpec.function(fn).timeout(10)`).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

from kstream.app import App
from kstream.dstream import DStream
from kstream.ops.state_ops import State, StateSpec

__all__ = ["SparkConf", "SparkContext", "State", "StateSpec", "StreamingContext"]


class SparkConf:
    """Holds settings like Spark's; only the app name and master matter here."""

    def __init__(self) -> None:
        self.settings: dict[str, str] = {}

    def set(self, key: str, value: str) -> SparkConf:
        self.settings[key] = value
        return self

    def setAppName(self, name: str) -> SparkConf:
        return self.set("spark.app.name", name)

    def setMaster(self, master: str) -> SparkConf:
        return self.set("spark.master", master)

    def get(self, key: str, default: str | None = None) -> str | None:
        return self.settings.get(key, default)


class SparkContext:
    """Spark's entry point; here only a name and a way to make lists (`parallelize`)."""

    def __init__(
        self,
        master: str | None = None,
        appName: str | None = None,
        conf: SparkConf | None = None,
    ):
        conf = conf or SparkConf()
        self.master = master or conf.get("spark.master", "local[*]")
        self.appName = appName or conf.get("spark.app.name") or "kstream-app"

    def parallelize(self, data: Iterable[Any], numSlices: int | None = None) -> list[Any]:
        return list(data)

    def setLogLevel(self, level: str) -> None:
        import logging

        logging.getLogger("kstream").setLevel(level.upper())

    def stop(self) -> None:
        pass


class StreamingContext:
    """A kstream App behind Spark's StreamingContext API (local sources, wall clock)."""

    def __init__(self, sparkContext: SparkContext, batchDuration: float):
        self.sparkContext = sparkContext
        self.app = App(sparkContext.appName, batch_interval=batchDuration)
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def socketTextStream(self, hostname: str, port: int) -> DStream:
        return self.app.socket_text_stream(hostname, port)

    def queueStream(
        self,
        rdds: Iterable[Iterable[Any]],
        oneAtATime: bool = True,
        default: Any = None,
    ) -> DStream:
        return self.app.queue_stream(rdds, one_at_a_time=oneAtATime, default=default)

    def union(self, *dstreams: DStream) -> DStream:
        return self.app.union(*dstreams)

    def checkpoint(self, directory: str) -> None:
        """Spark keeps state checkpoints there; kstream keeps its state stores there."""
        self.app.settings.state_dir = directory

    def start(self) -> None:
        self.app.starting()  # in this thread: a file that kstream loads stops here

        def run() -> None:
            try:
                self.app.run()
            except BaseException as e:  # surfaced by awaitTermination
                self._error = e

        self._thread = threading.Thread(target=run, name="streaming-context", daemon=True)
        self._thread.start()

    def awaitTermination(self, timeout: float | None = None) -> None:
        self.awaitTerminationOrTimeout(timeout)

    def awaitTerminationOrTimeout(self, timeout: float | None) -> bool:
        """True if the context stopped within `timeout` seconds (Spark's contract)."""
        if self._thread is None:
            raise RuntimeError("StreamingContext has not been started")
        try:
            self._thread.join(timeout)
        except KeyboardInterrupt:
            self.stop()
            self._thread.join(5)
        if self._error is not None:
            raise self._error
        return not self._thread.is_alive()

    def stop(self, stopSparkContext: bool = True, stopGraceFully: bool = False) -> None:
        self.app.stop()
        if self._thread is not None:
            self._thread.join(10)
