"""A batch run again upstream (after a crash) reaches the stage after the shuffle twice:
the stage counts one complete run of it, never both (DESIGN §9.1: a killed and restarted
run gives the same per-batch results as a clean one)."""

from __future__ import annotations

import operator

import kstream
from kstream.kafka import exchange
from tests.unit.offline import msg, offline_worker

T = 10_000
TOPIC = "p-reduce_by_key-3-repartition"
L0, L1 = ("lines", 0), ("lines", 1)  # the two upstream tasks


def word_count(monkeypatch, tmp_path):
    app = kstream.App("p", batch_interval=1.0, state_dir=str(tmp_path))
    app.stream("lines").map(lambda w: (w, 1)).reduce_by_key(operator.add).to("out")
    w = offline_worker(monkeypatch, app, {"lines": 2, "out": 1})
    assert w.exchange_partitions == {TOPIC: 2}  # this worker owns partition 0 of it
    w.stages[1].assign([(TOPIC, 0)])
    return w


class Repartition:
    """The repartition partition as upstream runs write it: records, then a marker."""

    def __init__(self, w):
        self.w, self.offset = w, 0

    def write(self, t, writer, records, tasks=None):
        msgs = []
        for r in records:
            msgs.append(msg(TOPIC, 0, self.offset, exchange.encode(t, 0, r, writer), ts=t))
            self.offset += 1
        if tasks is not None:  # None: the run crashed before its marker
            marker = exchange.encode_marker(t, tasks, (0,), writer)
            msgs.append(msg(TOPIC, 0, self.offset, marker, ts=t))
            self.offset += 1
        self.w.stages[1].ingest(TOPIC, msgs, 0)

    def run_due(self):
        stage = self.w.stages[1]
        for t, tps in stage.due(0):
            self.w._process(stage, t, tps)

    def counts(self):
        return [(r["timestamp"], r["key"], r["value"]) for r in self.w.producer.to("out")]


def test_the_records_of_a_run_that_crashed_before_its_marker_are_not_counted(monkeypatch, tmp_path):
    w = word_count(monkeypatch, tmp_path)
    x = Repartition(w)
    x.write(T, 1, [("a", 2), ("b", 1)])  # the crashed run: no marker
    x.write(T, 2, [("a", 2), ("b", 1)], (L0, L1))  # the next owner's run of the same batch
    x.run_due()
    assert x.counts() == [(T, b"a", b"2"), (T, b"b", b"1")]
    assert w.stages[1].repeated == 2


def test_a_complete_run_repeated_while_the_batch_is_open_counts_once(monkeypatch, tmp_path):
    w = word_count(monkeypatch, tmp_path)
    x = Repartition(w)
    x.write(T, 1, [("a", 1)], (L0,))  # complete, but its offsets were not committed
    x.write(T, 2, [("a", 1)], (L0,))  # so the next owner of lines-0 runs it again
    x.run_due()
    assert x.counts() == []  # lines-1 has not closed batch T yet
    x.write(T, 3, [("a", 5), ("c", 1)], (L1,))
    x.run_due()
    assert x.counts() == [(T, b"a", b"6"), (T, b"c", b"1")]


def test_a_repeat_that_comes_after_its_batch_closed_is_dropped_not_counted_late(
    monkeypatch, tmp_path
):
    w = word_count(monkeypatch, tmp_path)
    x = Repartition(w)
    x.write(T, 1, [("a", 1)], (L0, L1))
    x.run_due()
    x.write(T, 2, [("a", 1)], (L0,))  # lines-0's batch T again, after the stage closed it
    x.write(T + 1000, 3, [("a", 7)], (L0, L1))
    x.run_due()
    assert x.counts() == [(T, b"a", b"1"), (T + 1000, b"a", b"7")]
    assert w.stages[1].late == 0 and w.stages[1].repeated == 1


def test_a_later_run_covering_a_new_task_is_kept(monkeypatch, tmp_path):
    # lines-0 and lines-1 together, then lines-1 alone again (a repeat) and lines-0 with
    # a task only it covers: its records cannot be told apart by task, so they all count
    w = word_count(monkeypatch, tmp_path)
    x = Repartition(w)
    x.write(T, 1, [("a", 1)], (L0,))
    x.write(T, 2, [("b", 1)], (L0, L1))
    x.run_due()
    assert x.counts() == [(T, b"a", b"1"), (T, b"b", b"1")]
