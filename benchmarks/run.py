"""kstream against a hand-written confluent-kafka loop, side by side in one run.

    python benchmarks/run.py [--lines 1000000] [--only stateless,wordcount]

Produces N text lines (9 words each, 1,000-word vocabulary, timestamps over 100 s) to an
8-partition topic on the embedded broker, then runs each job over the whole topic:

  raw stateless   consume -> filter + map per record -> produce          (the limit)
  kstream         the same job as a kstream pipeline (one worker)
  raw wordcount   consume -> split -> count per 1 s batch in a dict -> produce counts
  kstream         flat_map/map/reduce_by_key -> to (with its repartition stage)

Each figure is input records / wall seconds from the first record read to the last output
acknowledged; the ratio kstream/raw is what to read, since the machine is shared.
"""

from __future__ import annotations

import argparse
import operator
import random
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable

from confluent_kafka import Consumer, Producer

import kstream
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


def fill(bootstrap: str, topic: str, lines: int) -> None:
    rng = random.Random(1)
    vocab = [f"word{i}" for i in range(1000)]
    text = [" ".join(rng.choices(vocab, k=9)).encode() for _ in range(5000)]
    start = (int(time.time()) - 3600) * 1000
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "batch.num.messages": 10000})
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


class RawWordCount:
    """Counts per 1 s batch of record time; a batch is emitted once a later one starts."""

    def __init__(self) -> None:
        self.counts: dict[int, Counter] = {}

    def __call__(self, msgs, p, out):
        for m in msgs:
            t = m.timestamp()[1] // 1000
            c = self.counts.get(t)
            if c is None:
                c = self.counts[t] = Counter()
            c.update(m.value().decode().split())
        newest = max(self.counts, default=0)
        for t in sorted(self.counts):
            if t < newest or not msgs:
                for w, n in self.counts.pop(t).items():
                    p.produce(out, str(n).encode(), w.encode(), timestamp=t * 1000)


def kstream_job(
    bootstrap: str,
    topic: str,
    out: str,
    lines: int,
    build: Callable[[kstream.DStream], kstream.DStream],
) -> float:
    app = kstream.App(
        f"bench-{uuid.uuid4().hex[:6]}", batch_interval=1.0, brokers=bootstrap, kafka=FAST_CLIENT
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
                and all(not s.open.records for s in w.stages)
                and (last_stage.closer.closed_through or 0) >= w.stages[0].closer.closed_through
                and w.stages[0].clock.watermark(int(time.time() * 1000)) is not None
                and all(w.stages[0].clock.caught_up.values())
            ):
                break
        elapsed = time.perf_counter() - first
    finally:
        w.close()
    return lines / elapsed


def stateless(s: kstream.DStream) -> kstream.DStream:
    return s.filter(lambda v: "word1 " in v).map(str.upper)


def wordcount(s: kstream.DStream) -> kstream.DStream:
    return s.flat_map(str.split).map(lambda w: (w, 1)).reduce_by_key(operator.add)


JOBS = {  # name: (raw loop's per-bulk processing, kstream pipeline, target ratio)
    "stateless": (lambda: raw_stateless, stateless, 0.8),
    "wordcount": (RawWordCount, wordcount, 0.6),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--only", default="stateless,wordcount")
    ap.add_argument("--repeat", type=int, default=2, help="alternating runs; best of each")
    args = ap.parse_args()
    jobs = args.only.split(",")
    with EmbeddedBroker() as broker:
        b = broker.bootstrap
        topic = "bench-lines"
        create_topics(b, {topic: PARTITIONS})
        t0 = time.perf_counter()
        fill(b, topic, args.lines)
        print(f"produced {args.lines:,} lines in {time.perf_counter() - t0:.1f}s", flush=True)
        rows = []
        for job in jobs:
            out_raw, out_ks = f"out-raw-{job}", f"out-ks-{job}"
            create_topics(
                b,
                {f"{o}-{i}": PARTITIONS for o in (out_raw, out_ks) for i in range(args.repeat)},
            )
            if job not in JOBS:
                sys.exit(f"unknown job {job}; choose from {', '.join(JOBS)}")
            raw_process, pipeline, target = JOBS[job]
            raw = ks = 0.0
            for i in range(args.repeat):  # alternate, so both see the same machine load
                raw = max(raw, raw_loop(b, topic, f"{out_raw}-{i}", args.lines, raw_process()))
                ks = max(ks, kstream_job(b, topic, f"{out_ks}-{i}", args.lines, pipeline))
            rows.append((job, raw, ks, target))
            print(
                f"{job:10s} raw {raw:10,.0f} rec/s   kstream {ks:10,.0f} rec/s   "
                f"ratio {ks / raw:.2f} (target >= {target})",
                flush=True,
            )
    print("\njob        raw rec/s   kstream rec/s   ratio   target")
    for job, raw, ks, target in rows:
        print(f"{job:10s} {raw:10,.0f}  {ks:12,.0f}   {ks / raw:5.2f}   >= {target}")


if __name__ == "__main__":
    main()
