import logging

from kstream.observe import SummaryLogger, Timeline


def test_summary_line_covers_the_period_since_the_last_line(caplog):
    log = logging.getLogger("kstream.test.summary")
    tl = Timeline()
    s = SummaryLogger(log, every_seconds=30)
    tl.add(1.0, 999, 9.0, 9.0, 999.0)  # before the first call: not in any period
    with caplog.at_level(logging.INFO, logger=log.name):
        assert s.maybe_log(tl, now=100.0) is None  # starts the first period
        for i in range(30):
            tl.add(
                2.0 + i,
                records=400,
                processing_seconds=0.1 + (0.04 if i % 2 else 0),
                scheduling_delay_seconds=0.01 * (i % 3),
                input_rate=400.0,
            )
        tl.set_lag("t", 0, 7)
        tl.set_lag("t", 1, 5)
        assert s.maybe_log(tl, now=129.9) is None  # period not over yet
        line = s.maybe_log(tl, now=130.0)
    assert line == "batches=30 records/s=400.0 lag=12 max_delay=0.02s avg_processing=0.12s"
    assert [r.getMessage() for r in caplog.records] == [line]
    assert caplog.records[0].levelno == logging.INFO


def test_empty_period_still_logs_and_counts_evicted_batches(caplog):
    log = logging.getLogger("kstream.test.summary2")
    tl = Timeline(capacity=2)
    s = SummaryLogger(log, every_seconds=10)
    with caplog.at_level(logging.INFO, logger=log.name):
        s.maybe_log(tl, now=0.0)
        assert s.maybe_log(tl, now=10.0) == (
            "batches=0 records/s=0.0 lag=0 max_delay=0.00s avg_processing=0.00s"
        )
        for i in range(5):  # more than the ring holds
            tl.add(float(i), 20, 1.0, 0.5, 20.0)
        assert s.maybe_log(tl, now=20.0) == (
            "batches=5 records/s=10.0 lag=0 max_delay=0.50s avg_processing=1.00s"
        )
    assert len(caplog.records) == 2
