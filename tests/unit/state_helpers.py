"""Helpers for the state and window tests: runs that would lose any state an operator
kept outside its store, and plain-Python references to compare with."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable

from kstream.codec import Msgpack
from kstream.ops.stateful import Stateful
from kstream.partitioning import BY_KEY, owner, partitioner
from kstream.state.memory import MemoryStore


def run_with_fresh_ops(app, n: int) -> None:
    """Run n batches; before each batch after the first, every stateful operator is
    replaced by a pristine copy bound to its store (as a Kafka runner re-binds stores):
    state kept in Python attributes would be lost."""
    nodes = [node for node in app.nodes if isinstance(node.op, Stateful)]
    pristine = {node: copy.deepcopy(node.op) for node in nodes}
    for _ in range(n):
        app.run_batches(1)
        for node in nodes:
            op = copy.deepcopy(pristine[node])
            op.bind(node.op.store)
            node.op = op


def store_of(app, kind: str):
    (op,) = [n.op for n in app.nodes if n.op.kind == kind]
    return op.store


def run_partitioned(op, batches: list[list], n: int, interval_ms: int, partitions: int):
    """Run a keyed stateful operator as a Kafka runner would: each batch combined upstream
    (`partial`), split by the shuffle's partitioner, and run task by task on one store per
    partition, re-bound before each task and committed after each batch. Returns
    [(time, records or None)]."""
    where = partitioner(BY_KEY, partitions)
    stores = [MemoryStore(Msgpack(), op.kind) for _ in range(partitions)]
    out = []
    for i in range(1, n + 1):
        t = i * interval_ms
        batch = list(batches[i - 1]) if i <= len(batches) else []
        combined = op.partial(batch) if hasattr(op, "partial") else batch
        results = []
        for p in range(partitions):
            op.bind(stores[p], owner(p, partitions))
            results.append(op.apply([[r for r in combined if where(r) == p]], t))
            stores[p].commit(None)
        present = [r for r in results if r is not None]
        out.append((t / 1000, [x for r in present for x in r] if present else None))
    return out


def pairs_of(batches: list[list]) -> dict[float, dict]:
    return {t: dict(r) for t, r in batches}


# -- a PySpark program as a subprocess, fed by a line server ---------------------------
def run_program(
    tmp_path,
    source: str,
    args: list[str],
    feed: Callable[[], None],
    done: Callable[[str], bool],
    timeout: float,
) -> tuple[str, str]:
    """Start the program, call feed() once it runs, stop it when done(stdout so far)."""
    program = tmp_path / "program.py"
    program.write_text(source)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, str(program), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    output: list[str] = []

    def reader() -> None:
        for line in proc.stdout:  # type: ignore[union-attr]
            output.append(line)

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    err = ""
    try:
        feed()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and proc.poll() is None:
            if done("".join(output)):
                break
            time.sleep(0.05)
    finally:
        proc.terminate()
        try:
            _, err = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
        thread.join(5)
    return "".join(output), err
