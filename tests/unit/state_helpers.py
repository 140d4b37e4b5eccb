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
from kstream.local import LocalRunner
from kstream.ops.stateful import BatchContext
from kstream.partitioning import BY_KEY, owner, partitioner
from kstream.state.memory import MemoryStore


def run_with_fresh_ops(app, n: int) -> None:
    """Run n batches locally; before each batch after the first, every stateful operator
    is replaced by a pristine copy working on the same store (as a Kafka runner gives
    each task's batch its store): state kept in Python attributes would be lost."""
    runner = LocalRunner(app)
    pristine = {node: copy.deepcopy(node.op) for node in runner.contexts}
    for _ in range(n):
        runner.run_virtual(1)
        for node in runner.contexts:
            node.op = copy.deepcopy(pristine[node])


def store_of(runner: LocalRunner, kind: str):
    """The store of the runner's operator of that kind."""
    (store,) = [c.store for n, c in runner.contexts.items() if n.op.kind == kind]
    return store


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
            context = BatchContext(stores[p], owner(p, partitions))
            results.append(op.apply_in(context, [[r for r in combined if where(r) == p]], t))
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
