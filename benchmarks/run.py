"""kstream against a hand-written confluent-kafka loop, side by side in one run.

    python benchmarks/run.py [--lines 1000000] [--keys 1000000] [--only running,eos]
                             [--backlog 1,4]

Produces N text lines (9 words each, 1,000-word vocabulary, timestamps over 100 s) to an
8-partition topic on the embedded broker, then runs each job over the whole topic:

  stateless  raw: consume -> filter + map per record -> produce          (the limit)
             kstream: the same job as a pipeline (one worker)
  wordcount  raw: consume -> split -> count per 1 s batch of record time in a dict; a
             batch's counts are produced once every partition has passed its end
             kstream: flat_map/map/reduce_by_key -> to (with its repartition stage)
  running    raw: a running total per word in a plain dict; each 1 s batch of record
             time (closed once every partition has passed it) adds its counts, then every
             word's total is produced, as update_state_by_key emits every key's state
             every batch (Spark's semantics). The dict is all the raw loop keeps: it
             writes no changelog and could not survive a crash.
             kstream: flat_map/map/update_state_by_key(sum) -> to; its state is in
             RocksDB, each batch's changes go to the changelog topic
  running-mws  raw: running totals in a dict as for `running`, but each closed 1 s batch
             produces only the totals of the words it updated (Spark's mapWithState)
             kstream: flat_map/map/reduce_by_key(add).map_with_state(spec), the spec adding
             the batch's count to the key's total and emitting (word, total); state in
             RocksDB and its changelog; map_with_state reads reduce_by_key's stage (2 stages)
  window     raw: counts per word and 10 s tumbling window of record time in a dict; a
             window's counts are produced once every partition has passed its end
             kstream: flat_map/count_by_value_and_window(10, 10) -> to (tumbling: length
             = slide; Spark's countByValueAndWindow, kept incrementally, its per-batch
             counts and window totals in RocksDB and the changelog)
  restore    --keys keys of update_state_by_key state are written to a changelog
             partition; kstream rebuilds the store (TaskStores.restore, in 0.5 s slices as
             the worker does) on an empty state dir: seconds and keys/s, against a raw
             consumer reading the same changelog partition to its end (no RocksDB)
  eos        kstream's wordcount under guarantee="exactly-once" against the same under
             "at-least-once" (one transaction per loop step vs flush-then-commit)

Each figure is input records (restore: keys) / wall seconds from the first record read to
the last output acknowledged (restore: from assignment to the store complete); the ratio
is what to read, since the machine is shared. kstream runs with max_empty_batches=10, so
that after the backlog it runs 10 empty batches (the last window closes among them) and
then the present, not the 60 empty batches (each emitting every key's state, for
`running`) of an idle gap.

Every side of every round runs in a spawned interpreter of its own, so its peak RSS
(VmHWM of /proc/self/status) is its own; CPU us/record is that process's CPU time (every
thread) over the side's run / input records (restore: keys). `--backlog 1,4` then runs
kstream's stateless job over lines x1 and x4 and prints each peak RSS and their ratio.
"""

from __future__ import annotations

import argparse
import multiprocessing
import operator
import random
import shutil
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

import kstream
from kstream.codec import Msgpack
from kstream.ops.stateful import KEY
from kstream.plan import compile_plan
from kstream.state.changelog import changelog_topic
from kstream.state.rocks import USER
from kstream.state.tasks import TaskStores, store_shape
from kstream.testing import FAST_CLIENT, EmbeddedBroker, create_topics
from kstream.worker import Worker

PARTITIONS = 8
CONSUMER = {
    "auto.offset.reset": "earliest",
    "enable.auto.commit": False,
    "enable.partition.eof": True,
    "fetch.queue.backoff.ms": 10,
    **FAST_CLIENT,
}
FAST_PRODUCER = {"linger.ms": 20, "batch.num.messages": 10000}


def fill(bootstrap: str, topic: str, lines: int) -> None:
    rng = random.Random(1)
    vocab = [f"word{i}" for i in range(1000)]
    text = [" ".join(rng.choices(vocab, k=9)).encode() for _ in range(5000)]
    start = (int(time.time()) - 3600) * 1000
    p = Producer({"bootstrap.servers": bootstrap, **FAST_PRODUCER})
    for i in range(lines):
        while True:
            try:
                p.produce(
                    topic,
                    text[i % 5000],
                    partition=i % PARTITIONS,
                    timestamp=start + (i * 100_000) // lines,
                )
                break
            except BufferError:
                p.poll(0.05)
    assert p.flush(120) == 0


def raw_loop(
    bootstrap: str, topic: str, out: str, lines: int, process: Callable[[list, Producer, str], None]
) -> float:
    """Consume everything, hand each bulk to `process`, commit after each flush."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"raw-{uuid.uuid4()}", **CONSUMER})
    p = Producer(
        {
            "bootstrap.servers": bootstrap,
            "linger.ms": 5,
            "enable.idempotence": True,
            "queue.buffering.max.messages": 1_000_000,
        }
    )
    c.subscribe([topic])
    seen, first = 0, None
    while seen < lines:
        msgs = c.consume(20000, 0.1)
        good = [m for m in msgs if m.error() is None]
        if good:
            first = first or time.perf_counter()
            seen += len(good)
            process(good, p, out)
            p.flush()
            c.commit(asynchronous=False)
    process([], p, out)  # end of input: emit what is held
    p.flush()
    elapsed = time.perf_counter() - first
    c.close()
    return lines / elapsed


def raw_stateless(msgs, p, out):
    for m in msgs:
        v = m.value().decode()
        if "word1 " in v:
            p.produce(out, v.upper().encode())


class RawBuckets:
    """Word counts per bucket of record time (`size_ms`); a bucket closes once every
    partition has a record past its end (then `emit`), or at the end of the input."""

    def __init__(self, size_ms: int) -> None:
        self.size = size_ms
        self.counts: dict[int, Counter] = {}  # bucket end (ms) -> counts
        self.newest = dict.fromkeys(range(PARTITIONS), -1)  # per partition, newest ts

    def __call__(self, msgs, p, out):
        size, counts, newest = self.size, self.counts, self.newest
        for m in msgs:
            ts = m.timestamp()[1]
            end = ts - ts % size + size
            c = counts.get(end)
            if c is None:
                c = counts[end] = Counter()
            c.update(m.value().decode().split())
            newest[m.partition()] = ts
        watermark = min(newest.values())
        for end in sorted(counts):
            if end <= watermark or not msgs:
                self.emit(end, counts.pop(end), p, out)

    def emit(self, end: int, counts: Counter, p: Producer, out: str) -> None:
        raise NotImplementedError


class RawRunning(RawBuckets):
    """Running totals per word in a dict; each closed 1 s batch adds its counts, then
    every word's total is produced (what update_state_by_key emits each batch)."""

    def __init__(self) -> None:
        super().__init__(1000)
        self.totals: Counter = Counter()

    def emit(self, end, counts, p, out):
        totals = self.totals
        totals.update(counts)
        for w, n in totals.items():
            produce(p, out, str(n).encode(), w.encode(), end)


class RawRunningUpdated(RawRunning):
    """Running totals per word in a dict; each closed 1 s batch adds its counts, then
    only the words it updated have their total produced (what map_with_state emits)."""

    def emit(self, end, counts, p, out):
        totals = self.totals
        for w, n in counts.items():
            total = totals[w] = totals[w] + n
            produce(p, out, str(total).encode(), w.encode(), end)


class RawCounts(RawBuckets):
    """Counts per word and bucket (1 s: the word count's batches; 10 s: the tumbling
    window); a closed bucket's counts are produced."""

    def emit(self, end, counts, p, out):
        for w, n in counts.items():
            produce(p, out, str(n).encode(), w.encode(), end)


def produce(p: Producer, topic: str, value: bytes, key: bytes, ts: int) -> None:
    while True:
        try:
            p.produce(topic, value, key, timestamp=ts)
            return
        except BufferError:
            p.poll(0.05)


def kstream_job(
    bootstrap: str,
    topic: str,
    out: str,
    lines: int,
    build: Callable[[kstream.DStream], kstream.DStream],
    guarantee: str = "at-least-once",
) -> float:
    state_dir = tempfile.mkdtemp(prefix="kstream-bench-")
    app = kstream.App(
        f"bench-{uuid.uuid4().hex[:6]}",
        batch_interval=1.0,
        brokers=bootstrap,
        kafka=FAST_CLIENT,
        guarantee=guarantee,
        state_dir=state_dir,
        # after the end of the backlog, 10 empty batches (the last 10 s window closes
        # among them) and then the present, rather than the default 60 of an idle gap
        max_empty_batches=10,
    )
    build(app.stream(topic)).to(out)
    w = Worker(app)
    w.prepare()
    w.start()
    consumed = w.observer.metrics._child("kstream_records_consumed_total", topic)
    first = None
    last_stage = w.stages[-1]
    try:
        while True:
            w.step()
            n = consumed._value.get()
            if n and first is None:
                first = time.perf_counter()
            # done: every line read, every stage idle past the last data batch
            if (
                n >= lines
                and all(not s.open_times() for s in w.stages)
                and (last_stage.closer.closed_through or 0) >= w.stages[0].closer.closed_through
                and w.stages[0].watermark(int(time.time() * 1000)) is not None
                and all(task.clock.caught_up for task in w.stages[0].tasks.values())
            ):
                break
        elapsed = time.perf_counter() - first
    finally:
        w.close()
        shutil.rmtree(state_dir, ignore_errors=True)
    return lines / elapsed


def stateless(s: kstream.DStream) -> kstream.DStream:
    return s.filter(lambda v: "word1 " in v).map(str.upper)


def wordcount(s: kstream.DStream) -> kstream.DStream:
    return s.flat_map(str.split).map(lambda w: (w, 1)).reduce_by_key(operator.add)


def running_total(new: list[int], total: int | None) -> int:
    return (total or 0) + sum(new)


def running(s: kstream.DStream) -> kstream.DStream:
    return s.flat_map(str.split).map(lambda w: (w, 1)).update_state_by_key(running_total)


def add_to_total(word: str, count: int, state: kstream.State) -> tuple[str, int]:
    """The batch's count of `word` added to its running total; emits (word, total)."""
    total = (state.get_option() or 0) + count
    state.update(total)
    return word, total


def running_mws(s: kstream.DStream) -> kstream.DStream:
    counts = s.flat_map(str.split).map(lambda w: (w, 1)).reduce_by_key(operator.add)
    return counts.map_with_state(kstream.StateSpec(add_to_total))


def window(s: kstream.DStream) -> kstream.DStream:
    return s.flat_map(str.split).count_by_value_and_window(10, 10)


# -- restore -----------------------------------------------------------------------------
def restore_app(bootstrap: str, app_id: str) -> kstream.App:
    app = kstream.App(app_id, batch_interval=1.0, brokers=bootstrap)
    app.stream("unused").map(lambda w: (w, 1)).update_state_by_key(running_total)
    return app


def write_state(bootstrap: str, keys: int) -> tuple[str, str]:
    """A one-partition changelog of `keys` keys, as update_state_by_key writes it: its
    topic and the app id (the restoring side, in a process of its own, rebuilds the app)."""
    app_id = f"bench-restore-{uuid.uuid4().hex[:6]}"
    app = restore_app(bootstrap, app_id)
    node = compile_plan(app).exchanges[0].target
    topic = changelog_topic(app_id, node.name)
    create_topics(bootstrap, {topic: 1})
    p = Producer({"bootstrap.servers": bootstrap, **FAST_PRODUCER})
    codec = Msgpack()
    for i in range(keys):
        key = USER + codec.dumps_key((KEY, f"key{i:08d}"))
        while True:
            try:
                p.produce(topic, codec.dumps(i), key, 0, headers=codec.headers)
                break
            except BufferError:
                p.poll(0.05)
    assert p.flush(120) == 0
    return topic, app_id


def raw_read(bootstrap: str, topic: str, keys: int) -> float:
    """A plain consumer reads the changelog partition from 0 to its end (fetch settings
    as kstream's restore consumer: an end-of-partition event comes after fetch.wait.max.ms)."""
    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"raw-{uuid.uuid4()}",
            **CONSUMER,
            "fetch.wait.max.ms": 100,
            "queued.min.messages": 20000,
        }
    )
    began = time.perf_counter()
    c.assign([TopicPartition(topic, 0, 0)])
    n = 0
    while True:
        msgs = c.consume(10000, 0.1)
        n += sum(1 for m in msgs if m.error() is None)
        if any(
            m.error() is not None and m.error().code() == KafkaError._PARTITION_EOF for m in msgs
        ):
            break
    elapsed = time.perf_counter() - began
    c.close()
    assert n == keys, (n, keys)
    return keys / elapsed


def kstream_restore(bootstrap: str, app_id: str, keys: int) -> float:
    """A task's store rebuilt from its changelog on an empty state dir, as a worker does
    on assignment (TaskStores.restore, 0.5 s slices)."""
    app = restore_app(bootstrap, app_id)
    x = compile_plan(app).exchanges[0]
    node = x.target
    state_dir = tempfile.mkdtemp(prefix="kstream-bench-")
    restored = []
    stores = TaskStores(
        app.app_id,
        state_dir,
        {x.topic: [node]},
        {node: store_shape(node)},
        {node: Msgpack()},
        bootstrap,
        {},
        lambda name, seconds, n: restored.append(n),
        {x.topic: 1},
        app.settings.state_memory_mb,
    )
    try:
        began = time.perf_counter()
        stores.assign([(x.topic, 0)])
        while stores.restoring:
            stores.restore(0.5)
        elapsed = time.perf_counter() - began
        store = stores.store_of(node, 0)
        assert restored == [keys] and store.get((KEY, f"key{keys - 1:08d}")) == keys - 1
    finally:
        stores.close()
        shutil.rmtree(state_dir, ignore_errors=True)
    return keys / elapsed


# -- measuring one side in a process of its own ------------------------------------------
MB = 1 << 20
RSS_TARGET_MB = 150  # issue 14: a kstream worker's peak RSS
Side = tuple[Callable[..., float], tuple]  # a side's function (-> rate) and its arguments


@dataclass
class Measure:
    rate: float  # input records (restore: keys) per wall second
    rss_mb: float  # peak RSS of the process that ran only this side
    cpu_us: float  # that process's CPU time, every thread (librdkafka's too), per record


def best(runs: list[Measure]) -> Measure:
    """A side's rounds: the best rate and CPU per record, and the highest peak RSS (a
    peak that one round reached is one the side can reach)."""
    return Measure(
        max(m.rate for m in runs), max(m.rss_mb for m in runs), min(m.cpu_us for m in runs)
    )


def peak_rss_mb() -> float:
    """This process's peak resident set, VmHWM: not ru_maxrss, which after fork+exec keeps
    the high-water mark of the process that forked (a vfork child's is the parent's)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024 / MB
    raise RuntimeError("no VmHWM in /proc/self/status")


def run_side(side: Side, records: int, results: Connection) -> None:
    """In the child: run the side, send (rate, peak RSS, CPU us per record) back."""
    fn, fn_args = side
    cpu = time.process_time()
    rate = fn(*fn_args)
    cpu = time.process_time() - cpu
    results.send((rate, peak_rss_mb(), cpu * 1e6 / records))


def measure(side: Side, records: int) -> Measure:
    """Run one side in a fresh (spawned) interpreter, so that its peak RSS is its own:
    not the producer's buffers of the fill, nor another side's or round's."""
    ctx = multiprocessing.get_context("spawn")
    receive, send = ctx.Pipe(duplex=False)
    child = ctx.Process(target=run_side, args=(side, records, send))
    child.start()
    send.close()
    try:
        return Measure(*receive.recv())
    except EOFError:
        child.join()
        sys.exit(f"{side[0].__name__} failed in its process (exit code {child.exitcode})")
    finally:
        child.join()


# -- the jobs ----------------------------------------------------------------------------
@dataclass
class Job:
    baseline: str  # what kstream is compared with
    target: float  # kstream / baseline at least
    unit: str = "rec/s"


JOBS = {
    "stateless": Job("raw loop", 0.8),
    "wordcount": Job("raw loop", 0.6),
    "running": Job("raw loop", 0.6),
    "running-mws": Job("raw loop", 0.6),
    "window": Job("raw loop", 0.6),
    "restore": Job("raw read", 0.0, "keys/s"),
    "eos": Job("ks alos", 0.77),  # eos time <= 1.3x at-least-once
}
RAW = {
    "stateless": lambda: raw_stateless,
    "wordcount": lambda: RawCounts(1000),
    "running": RawRunning,
    "running-mws": RawRunningUpdated,
    "window": lambda: RawCounts(10_000),
}
PIPELINES = {
    "stateless": stateless,
    "wordcount": wordcount,
    "running": running,
    "running-mws": running_mws,
    "window": window,
}


def sides(job: str, b: str, topic: str, args) -> Callable[[int], tuple[Side, Side]]:
    """The two sides of a job (baseline, kstream) for a round number."""
    if job == "restore":
        changelog, app_id = write_state(b, args.keys)
        return lambda i: (
            (raw_read, (b, changelog, args.keys)),
            (kstream_restore, (b, app_id, args.keys)),
        )
    outs = {f"out-{side}-{job}-{i}": PARTITIONS for side in "ab" for i in range(args.repeat)}
    create_topics(b, outs)
    if job == "eos":
        return lambda i: (
            (kstream_job, (b, topic, f"out-a-{job}-{i}", args.lines, wordcount)),
            (kstream_job, (b, topic, f"out-b-{job}-{i}", args.lines, wordcount, "exactly-once")),
        )
    return lambda i: (
        (raw_loop, (b, topic, f"out-a-{job}-{i}", args.lines, RAW[job]())),
        (kstream_job, (b, topic, f"out-b-{job}-{i}", args.lines, PIPELINES[job])),
    )


def note(job: str, base: float, ks: float, args) -> str:
    if job == "restore":
        return f"{args.keys:,} keys restored in {args.keys / ks:.2f}s"
    if job == "eos":
        return f"time eos/alos {base / ks:.2f}x (target <= 1.3x)"
    return ""


def figures(m: Measure, unit: str) -> str:
    return f"{m.rate:10,.0f} {unit} {m.rss_mb:5.0f} MB {m.cpu_us:6.2f} us/rec"


def run_jobs(b: str, jobs: list[str], args) -> list[tuple[str, Job, Measure, Measure, str]]:
    topic = "bench-lines"
    if set(jobs) - {"restore"}:
        create_topics(b, {topic: PARTITIONS})
        t0 = time.perf_counter()
        fill(b, topic, args.lines)
        print(f"produced {args.lines:,} lines in {time.perf_counter() - t0:.1f}s", flush=True)
    rows = []
    for job in jobs:
        spec = JOBS[job]
        side_pair = sides(job, b, topic, args)
        records = args.keys if job == "restore" else args.lines
        base_runs, ks_runs = [], []
        for i in range(args.repeat):  # alternate, so both see the same machine load
            base_side, ks_side = side_pair(i)
            base_runs.append(measure(base_side, records))
            ks_runs.append(measure(ks_side, records))
        base, ks = best(base_runs), best(ks_runs)
        rows.append((job, spec, base, ks, note(job, base.rate, ks.rate, args)))
        target = f"(target >= {spec.target})" if spec.target else ""
        print(
            f"{job:11s} {spec.baseline} {figures(base, spec.unit)}   kstream "
            f"{figures(ks, spec.unit)} (RSS target <= {RSS_TARGET_MB} MB)   "
            f"ratio {ks.rate / base.rate:.2f} {target} {rows[-1][4]}",
            flush=True,
        )
    return rows


def run_backlog(b: str, factors: list[int], args) -> None:
    """kstream's stateless job over lines x each factor: its peak RSS should not grow
    with the backlog (issue 14: sizes < 20% apart, each <= 150 MB)."""
    peaks = {}
    for k in factors:
        lines, topic = args.lines * k, f"bench-backlog-{k}"
        outs = {f"out-backlog-{k}-{i}": PARTITIONS for i in range(args.repeat)}
        create_topics(b, {topic: PARTITIONS, **outs})
        fill(b, topic, lines)
        runs = [measure((kstream_job, (b, topic, out, lines, stateless)), lines) for out in outs]
        m = best(runs)
        peaks[k] = m.rss_mb
        print(
            f"backlog x{k:<3d} {lines:11,} lines  kstream {figures(m, 'rec/s')} "
            f"(RSS target <= {RSS_TARGET_MB} MB)",
            flush=True,
        )
    small, large = min(factors), max(factors)
    if small != large:
        print(
            f"backlog peak RSS x{large}/x{small} {peaks[large] / peaks[small]:.2f} "
            f"(target < 1.2, both <= {RSS_TARGET_MB} MB)",
            flush=True,
        )


def print_table(rows: list[tuple[str, Job, Measure, Measure, str]]) -> None:
    print(
        "\njob         baseline   baseline/s    MB  us/rec    kstream/s    MB  us/rec  "
        "unit     ratio   target   MB target"
    )
    for job, spec, base, ks, extra in rows:
        target = f">= {spec.target:<4}" if spec.target else "-      "
        print(
            f"{job:11s} {spec.baseline:9s} {base.rate:11,.0f} {base.rss_mb:5.0f} "
            f"{base.cpu_us:7.2f}  {ks.rate:11,.0f} {ks.rss_mb:5.0f} {ks.cpu_us:7.2f}  "
            f"{spec.unit:7s}  {ks.rate / base.rate:5.2f}   {target}  <= {RSS_TARGET_MB}  "
            f"{extra}".rstrip()
        )


def parse_args() -> tuple[argparse.Namespace, list[str], list[int]]:
    """The options, the jobs to run and the --backlog multiples of --lines."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--keys", type=int, default=1_000_000, help="restore: keys of state")
    ap.add_argument("--only", help="jobs, comma-separated (default: all; none with --backlog)")
    ap.add_argument("--repeat", type=int, default=2, help="alternating runs; best of each")
    ap.add_argument(
        "--backlog",
        help="e.g. 1,4: kstream's stateless peak RSS over lines x1 and x4 (after the jobs)",
    )
    args = ap.parse_args()
    jobs = args.only.split(",") if args.only else [] if args.backlog else list(JOBS)
    for job in jobs:
        if job not in JOBS:
            sys.exit(f"unknown job {job}; choose from {', '.join(JOBS)}")
    try:
        factors = [int(k) for k in args.backlog.split(",")] if args.backlog else []
    except ValueError:
        sys.exit(f"--backlog {args.backlog}: give whole multiples of --lines, e.g. 1,4")
    if any(k < 1 for k in factors):
        sys.exit(f"--backlog {args.backlog}: multiples must be at least 1")
    return args, jobs, factors


def main() -> None:
    args, jobs, factors = parse_args()
    with EmbeddedBroker() as broker:
        rows = run_jobs(broker.bootstrap, jobs, args)
        if factors:
            run_backlog(broker.bootstrap, factors, args)
    if rows:
        print_table(rows)


if __name__ == "__main__":
    main()
