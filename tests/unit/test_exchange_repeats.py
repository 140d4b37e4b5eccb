"""A batch run again upstream (after a crash) reaches the stage after the shuffle twice.
Records of a run that never wrote its marker are dropped: its batch was run again from
the committed offsets, so its records all come again. Nothing else is dropped: a record
for a batch already closed is late, whatever run wrote it."""

from __future__ import annotations

import operator

import kstream
from tests.unit.offline import frame_msg, marker_msg, offline_worker

T = 10_000
TOPIC = "p--reduce_by_key.add--repartition"
L0, L1 = ("lines", 0), ("lines", 1)  # the upstream tasks


def word_count(monkeypatch, tmp_path):
    app = kstream.App("p", batch_interval=1.0, state_dir=str(tmp_path))
    app.stream("lines").map(lambda w: (w, 1)).reduce_by_key(operator.add).to("out")
    w = offline_worker(app, {"lines": 2, "out": 1})
    assert w.exchange_partitions == {TOPIC: 2}  # this worker owns partition 0 of it
    w.stages[1].assign([(TOPIC, 0)])
    return w


class Repartition:
    """Partition 0 of the repartition topic as upstream runs write it: a run's records,
    then its marker."""

    def __init__(self, w):
        self.w, self.offset = w, 0

    def _offset(self):
        self.offset += 1
        return self.offset - 1

    def run(self, t, writer, records, tasks=None):
        """tasks None: the run was killed before its marker."""
        msgs = [frame_msg(TOPIC, 0, self._offset(), t, [r], writer) for r in records]
        if tasks is not None:
            msgs.append(marker_msg(TOPIC, 0, self._offset(), t, tasks, writer))
        self.w.stages[1].ingest(TOPIC, msgs, 0)

    def run_due(self):
        stage = self.w.stages[1]
        for t, tps in stage.due(0):
            self.w.run_batch(stage, t, tps)

    def counts(self):
        return [(r["timestamp"], r["key"], r["value"]) for r in self.w.delivery.producer.to("out")]


def test_the_records_of_a_run_killed_before_its_marker_are_not_counted(monkeypatch, tmp_path):
    w = word_count(monkeypatch, tmp_path)
    x = Repartition(w)
    x.run(T, 1, [("a", 2), ("b", 1)])  # killed: no marker
    x.run(T, 2, [("a", 2), ("b", 1)], (L0, L1))  # the next owner's run of the same batch
    x.run_due()
    assert x.counts() == [(T, b"a", b"2"), (T, b"b", b"1")]
    assert w.stages[1].abandoned == 2


def test_a_run_whose_marker_comes_later_in_the_batch_counts(monkeypatch, tmp_path):
    w = word_count(monkeypatch, tmp_path)
    x = Repartition(w)
    x.run(T, 1, [("a", 1)], (L0,))
    x.run_due()
    assert x.counts() == []  # lines-1 has not closed batch T yet
    x.run(T, 2, [("a", 5), ("c", 1)], (L1,))
    x.run_due()
    assert x.counts() == [(T, b"a", b"6"), (T, b"c", b"1")]


def test_a_record_for_a_closed_batch_is_late_whatever_run_wrote_it(monkeypatch, tmp_path):
    # e.g. a record its first owner upstream had taken as late, which the partition's
    # next owner, reading from the committed offset, runs in its own batch: dropping it
    # would lose it
    w = word_count(monkeypatch, tmp_path)
    x = Repartition(w)
    x.run(T, 1, [("a", 1)], (L0, L1))
    x.run_due()
    x.run(T, 2, [("z", 1)])  # its marker not yet here (or never)
    x.run(T + 1000, 3, [("a", 7)], (L0, L1))
    x.run_due()
    assert sorted(x.counts()) == [(T, b"a", b"1"), (T + 1000, b"a", b"7"), (T + 1000, b"z", b"1")]
    assert w.stages[1].late == 1 and w.stages[1].abandoned == 0
