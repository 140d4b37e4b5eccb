"""`kstream demo`: the word count on an embedded broker, printed batch by batch."""

from __future__ import annotations

import operator
import random
import threading
import time
from collections.abc import Callable

from confluent_kafka import Producer

from kstream.app import App
from kstream.testing import FAST_CLIENT, EmbeddedBroker, create_topics
from kstream.worker import Worker

SENTENCES = [
    "the quick brown fox jumps over the lazy dog while the cat sleeps in the sun",
    "a stream is a sequence of batches and every batch is a small dataset",
]
WORDS = [w for sentence in SENTENCES for w in sentence.split()]


def wordcount_app(brokers: str) -> App:
    app = App("wordcount", batch_interval=1.0, brokers=brokers, kafka=FAST_CLIENT)
    lines = app.stream("lines")
    counts = lines.flat_map(str.split).map(lambda w: (w, 1)).reduce_by_key(operator.add)
    counts.pprint()
    counts.to("word-counts")
    return app


def feed_lines(brokers: str, rate: float, stop: threading.Event) -> None:
    """Write random lines of text to `lines` at about `rate` lines per second."""
    producer = Producer({"bootstrap.servers": brokers, "linger.ms": 5})
    rng = random.Random(7)
    while not stop.wait(1 / rate):
        producer.produce("lines", " ".join(rng.choices(WORDS, k=rng.randint(3, 9))).encode())
        producer.poll(0)
    producer.flush(10)


def run_demo(
    duration: float | None, rate: float, on_signals: Callable[[Callable[[], None]], None]
) -> None:
    with EmbeddedBroker() as broker:
        print(f"embedded broker on {broker.bootstrap}; topics lines -> word-counts", flush=True)
        create_topics(broker.bootstrap, {"lines": 4, "word-counts": 4})
        stop = threading.Event()
        feeder = threading.Thread(target=feed_lines, args=(broker.bootstrap, rate, stop))
        feeder.start()
        worker = Worker(wordcount_app(broker.bootstrap))
        on_signals(worker.stop)
        started = time.monotonic()
        try:
            worker.run(duration)
        finally:
            stop.set()
            feeder.join()
        print(f"demo done: {worker.batches_done} batches in {time.monotonic() - started:.0f}s")
