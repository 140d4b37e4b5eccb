"""Fixtures for the broker-free unit tests."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from tests.unit.offline import KafkaProducerStandIn


class LineServer:
    """A TCP server on a free loopback port, like `nc -lk`: the test sends what it likes."""

    def __init__(self) -> None:
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(4)
        self.listener.settimeout(0.05)  # so the accept loop notices close()
        self.port = self.listener.getsockname()[1]
        self.connections: list[socket.socket] = []
        self.connected = threading.Event()
        self._closed = False
        self._thread = threading.Thread(target=self._accept, name="line-server", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(None)
            self.connections.append(conn)
            self.connected.set()

    def send(self, data: bytes, timeout: float = 10.0) -> None:
        """Send to the newest client, once one has connected."""
        if not self.connected.wait(timeout):
            raise TimeoutError("no client connected to the line server")
        self.connections[-1].sendall(data)

    def close(self) -> None:
        self._closed = True
        self._thread.join(5)
        self.listener.close()
        for c in self.connections:
            c.close()


@pytest.fixture
def line_server() -> Iterator[LineServer]:
    server = LineServer()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def journal(monkeypatch) -> list:
    """What the deliveries' producers are asked to do, in order."""
    calls: list = []
    monkeypatch.setattr(
        "kstream.delivery.Producer", lambda config: KafkaProducerStandIn(config, calls)
    )
    return calls
