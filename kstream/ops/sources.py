"""Input operators. Kafka sources are fed by the worker; the others by the local driver."""

from __future__ import annotations

import collections
import logging
import socket
import threading
import time
from collections.abc import Iterable
from typing import Any

from kstream.graph import Batch, Operator

log = logging.getLogger(__name__)


class KafkaSource(Operator):
    kind = "source"
    is_source = True

    def __init__(self, topics: list[str], keyed: bool, key_serde: str, value_serde: str):
        self.topics = topics
        self.keyed = keyed
        self.key_serde = key_serde
        self.value_serde = value_serde

    def apply(self, inputs, t):
        raise RuntimeError(
            "Kafka streams are read by the worker: run the app with `kstream worker`, "
            "or use app.queue_stream() for a broker-free test"
        )

    def describe(self) -> str:
        return f"source({', '.join(self.topics)})"


class QueueSource(Operator):
    """Batch k gets the k-th list; afterwards `default` (empty by default), as in Spark."""

    kind = "queue"
    is_source = True

    def __init__(self, batches: Iterable[Iterable[Any]], one_at_a_time: bool, default: Any):
        self.pending = collections.deque(list(b) for b in batches)
        self.one_at_a_time = one_at_a_time
        self.default = default

    def apply(self, inputs, t):
        if not self.pending:
            return list(self.default) if self.default is not None else []
        if self.one_at_a_time:
            return self.pending.popleft()
        out: Batch = []
        while self.pending:
            out.extend(self.pending.popleft())
        return out


class SocketSource(Operator):
    """Lines of text from a TCP server (`nc -lk 9999`), cut by arrival time."""

    kind = "socket"
    is_source = True

    def __init__(self, host: str, port: int):
        self.host = host
        self.port = port
        self._lines: collections.deque[tuple[float, str]] = collections.deque()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._read, name="socket-source", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                with socket.create_connection((self.host, self.port), timeout=1.0) as conn:
                    conn.settimeout(0.2)
                    log.info("connected to %s:%s", self.host, self.port)
                    self._read_lines(conn)
            except OSError as e:
                log.warning("socket %s:%s: %s; retrying", self.host, self.port, e)
                self._stop.wait(1.0)

    def _read_lines(self, conn: socket.socket) -> None:
        buf = b""
        while not self._stop.is_set():
            try:
                chunk = conn.recv(65536)
            except TimeoutError:
                continue
            if not chunk:
                return
            buf += chunk
            *lines, buf = buf.split(b"\n")
            now = time.time()
            self._lines.extend((now, ln.decode("utf-8", "replace").rstrip("\r")) for ln in lines)

    def apply(self, inputs, t):
        out: Batch = []
        while self._lines and self._lines[0][0] * 1000 < t:
            out.append(self._lines.popleft()[1])
        return out

    def describe(self) -> str:
        return f"socket({self.host}:{self.port})"
