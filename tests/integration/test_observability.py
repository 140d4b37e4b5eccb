"""A real `kstream worker` observed from outside, as Prometheus, Kubernetes and a person
with a browser see it: /metrics, /readyz, /healthz, /topology and the live page.

One worker runs for the whole module (starting one costs a group join): it replays a
backlog, then gets live lines, then late ones, and finally a SIGTERM.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from kstream.testing import create_topics, free_port, produce, read_topic
from tests.integration.workers import APPS, FAST, WORDS, make_lines, wait_for
from tests.observe.test_page_in_chromium import ARGS, CHROMIUM, COUNT_SERIES_PIXELS
from tests.observe.test_page_in_chromium import _browser_missing as browser_missing

PARTITIONS = 3
PER_PARTITION = 200


@dataclass
class Running:
    proc: subprocess.Popen
    bootstrap: str
    app_id: str
    url: str
    log: Path
    app_file: Path
    env: dict[str, str]
    source: str
    output: str
    expected_outputs: int  # output records of the backlog: one per word and batch
    sent: int = 0  # records produced to the source so far
    late: int = 0  # of which late
    last_live: float = 0.0  # wall time of the last live record
    readiness: list = field(default_factory=list)  # (status or "refused", reason)
    polling: threading.Event = field(default_factory=threading.Event)


def get(url: str) -> tuple[int | str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except (urllib.error.URLError, ConnectionError):
        return "refused", b""


def scrape(w: Running) -> list:
    status, body = get(w.url + "/metrics")
    assert status == 200, status
    return [s for fam in text_string_to_metric_families(body.decode()) for s in fam.samples]


def metric(samples: list, name: str, **labels: str) -> float | None:
    """The sum of the samples called `name` that carry `labels`; None if there are none."""
    found = [
        s.value
        for s in samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    ]
    return sum(found) if found else None


def poll_readiness(w: Running) -> None:
    while w.polling.is_set():
        status, body = get(w.url + "/readyz")
        reason = json.loads(body)["reason"] if body else ""
        w.readiness.append((status, reason))
        time.sleep(0.02)


@pytest.fixture(scope="module")
def worker(bootstrap: str, tmp_path_factory: pytest.TempPathFactory):
    """A worker that has replayed a backlog of PARTITIONS x PER_PARTITION lines."""
    tmp = tmp_path_factory.mktemp("observability")
    suffix = uuid.uuid4().hex[:8]
    source, output = f"lines-{suffix}", f"counts-{suffix}"
    app_id = f"it-observe-{suffix}"
    create_topics(bootstrap, {source: PARTITIONS, output: 2})
    records, expected = make_lines(PARTITIONS, PER_PARTITION, seconds=10)
    for p in range(PARTITIONS):
        produce(
            bootstrap, source, [(None, line.encode(), ts) for q, line, ts in records if q == p], p
        )

    # The app under its own id, in a file: `kstream describe` takes no --app-id.
    app_file = tmp / "observed_app.py"
    app_file.write_text(
        "import runpy\n"
        f"app = runpy.run_path({str(APPS / 'wordcount.py')!r})['app']\n"
        f"app.app_id = {app_id!r}\n"
    )
    env = {
        **os.environ,
        "KS_TEST_INPUT": source,
        "KS_TEST_OUTPUT": output,
        "KSTREAM_STATE_DIR": str(tmp / "state"),
        "KSTREAM_SUMMARY_SECONDS": "2",
    }
    port = free_port()
    cmd = [
        *(sys.executable, "-m", "kstream", "worker", str(app_file)),
        *("--brokers", bootstrap, "--metrics-host", "127.0.0.1", "--metrics-port", str(port)),
        *FAST,
    ]
    log = tmp / "worker.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
    w = Running(
        proc,
        bootstrap,
        app_id,
        f"http://127.0.0.1:{port}",
        log,
        app_file,
        env,
        source,
        output,
        expected_outputs=sum(len(c) for c in expected.values()),
        sent=len(records),
    )
    w.polling.set()  # from the moment the process starts
    poller = threading.Thread(target=poll_readiness, args=(w,), daemon=True)
    poller.start()
    try:

        def replayed() -> bool:
            assert proc.poll() is None, log.read_text()[-3000:]
            if not w.readiness or w.readiness[-1][0] == "refused":
                return False
            samples = scrape(w)
            produced = metric(samples, "kstream_records_produced_total", topic=output)
            lags = [
                metric(samples, "kstream_consumer_lag", topic=source, partition=str(p))
                for p in range(PARTITIONS)
            ]
            return produced == w.expected_outputs and lags == [0] * PARTITIONS

        wait_for(replayed, 30, "the backlog to be replayed")
        yield w
    finally:
        w.polling.clear()
        poller.join(5)
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_metrics_readiness_health_and_topology_of_a_running_worker(worker: Running):
    w = worker
    samples = scrape(w)
    assert metric(samples, "kstream_records_consumed_total", topic=w.source) == w.sent
    produced = metric(samples, "kstream_records_produced_total", topic=w.output)
    assert produced == w.expected_outputs
    assert len(read_topic(w.bootstrap, w.output, idle=1.0)) == produced
    for p in range(PARTITIONS):
        assert metric(samples, "kstream_consumer_lag", topic=w.source, partition=str(p)) == 0
    assert metric(samples, "kstream_batch_processing_seconds_count") > 0
    assert metric(samples, "kstream_batch_scheduling_delay_seconds_count") > 0
    assert metric(samples, "kstream_commits_total") > 0
    assert metric(samples, "kstream_commit_seconds_count") > 0
    assert metric(samples, "kstream_ready") == 1
    assert metric(samples, "kstream_rebalances_total", kind="assign") >= 1
    assert metric(samples, "kstream_rebalances_total", kind="lost") == 0
    assert metric(samples, "kstream_batch_interval_seconds") == 1.0

    # every partition read to its end: the watermark is the wall clock minus the lateness
    # (reported once a second: the scrape above may predate the last partition's end)
    def follows_the_clock() -> bool:
        watermark = metric(scrape(w), "kstream_watermark_seconds")
        return abs(watermark - (time.time() - 0.5)) < 5

    wait_for(follows_the_clock, 5, "the watermark to follow the wall clock")
    assert metric(samples, "kstream_last_batch_time_seconds") > time.time() - 5

    # /readyz: refused (not listening yet) or 503 until the group is joined, then 200
    seen = list(w.readiness)
    statuses = [s for s, _ in seen]
    assert 200 in statuses, seen[-5:]
    first = statuses.index(200)
    assert set(statuses[:first]) <= {"refused", 503}, set(statuses[:first])
    assert (503, "joining the consumer group") in seen[:first]
    assert set(statuses[first:]) == {200}, "ready went back to not ready"

    status, body = get(w.url + "/healthz")
    assert status == 200 and json.loads(body)["alive"] is True

    status, body = get(w.url + "/topology")
    assert status == 200
    described = subprocess.run(
        [sys.executable, "-m", "kstream", "describe", str(w.app_file), "--json"],
        capture_output=True,
        text=True,
        env=w.env,
        timeout=30,
    )
    assert described.returncode == 0, described.stderr
    assert json.loads(body) == json.loads(described.stdout)


@pytest.fixture
def browser():
    missing = browser_missing()
    if missing:
        if os.environ.get("KSTREAM_REQUIRE_BROWSER") == "1":
            pytest.fail(missing)
        pytest.skip(missing)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield browser.new_page(viewport={"width": 1280, "height": 900})
        finally:
            browser.close()


def feed_live_lines(w: Running, seconds: float) -> None:
    """Lines stamped with the current time, a few every 0.2 s, to every partition."""
    rng = random.Random(7)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        now = int(time.time() * 1000)
        for p in range(PARTITIONS):
            lines = [(None, " ".join(rng.choices(WORDS, k=4)).encode(), now) for _ in range(3)]
            produce(w.bootstrap, w.source, lines, p)
            w.sent += len(lines)
        w.last_live = time.time()
        time.sleep(0.2)


def test_live_page_of_a_running_worker(worker: Running, browser):
    w, page = worker, browser
    problems = []
    page.on("console", lambda m: m.type in ("error", "warning") and problems.append(m.text))
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))
    page.on("response", lambda r: r.status >= 400 and problems.append(f"{r.status}: {r.url}"))

    feeder = threading.Thread(target=feed_live_lines, args=(w, 5.0), daemon=True)
    feeder.start()
    page.goto(w.url + "/")
    page.wait_for_function("Number(document.body.dataset.updates) >= 1", timeout=10_000)
    before = int(page.get_attribute("#rate", "data-points"))
    feeder.join(15)
    # the live batches arrive on the page: more points than at the start
    page.wait_for_function(
        f"Number(document.getElementById('rate').dataset.points) >= {before + 3}",
        timeout=10_000,
    )
    for chart in ("rate", "proc", "delay"):
        assert int(page.get_attribute(f"#{chart}", "data-points")) >= 5, chart
        assert page.evaluate(COUNT_SERIES_PIXELS, chart) > 100, chart
    assert page.inner_text("#app") == w.app_id
    assert page.inner_text("#ready") == "ready"
    assert page.inner_text("#alive") == "alive"
    assert page.inner_text("#interval") == "1.00 s"
    lag_rows = page.locator("#lag-table tbody tr")
    topics_shown = {lag_rows.nth(i).inner_text().split()[0] for i in range(lag_rows.count())}
    assert w.source in topics_shown
    time.sleep(1.2)  # one more poll after the assertions, still no errors
    assert problems == []


def test_late_records_summary_and_clean_shutdown(worker: Running):
    w = worker
    late_ts = int(time.time() * 1000) - 120_000  # batches closed long ago
    for p in range(PARTITIONS):
        produce(w.bootstrap, w.source, [(None, b"late words", late_ts)], p)
    w.sent += PARTITIONS
    w.late += PARTITIONS

    def all_read() -> bool:
        samples = scrape(w)
        return (
            metric(samples, "kstream_records_consumed_total", topic=w.source) == w.sent
            and metric(samples, "kstream_late_records_total", topic=w.source) == w.late
        )

    wait_for(all_read, 15, "the live and late records to be read")

    # outputs settle once the last batch with records has passed through both stages
    settled: list[float] = []

    def outputs_settled() -> bool:
        settled.append(metric(scrape(w), "kstream_records_produced_total", topic=w.output))
        return len(settled) >= 3 and settled[-1] == settled[-3] and time.time() > w.last_live + 3

    wait_for(outputs_settled, 20, "the outputs to settle")
    w.polling.clear()  # readiness drops while stopping: that is expected
    statuses = [s for s, _ in w.readiness]
    assert set(statuses[statuses.index(200) :]) == {200}, "ready went back to not ready"

    w.proc.send_signal(signal.SIGTERM)
    assert w.proc.wait(30) == 0, w.log.read_text()[-3000:]
    assert len(read_topic(w.bootstrap, w.output, idle=1.0)) == settled[-1]

    text = w.log.read_text()
    assert "INFO kstream.summary: batches=" in text, text[-3000:]
    late_lines = [
        ln for ln in text.splitlines() if "WARNING kstream.observe:" in ln and "late" in ln
    ]
    assert sum(int(ln.split("kstream.observe: ")[1].split()[0]) for ln in late_lines) == w.late
    assert "stopped after" in text
    assert "Traceback" not in text, text[-3000:]
