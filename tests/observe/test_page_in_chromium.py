"""The live page in a real headless Chromium, fed by a real server and timeline.

Needs Debian's `chromium` and Playwright for Python (never `playwright install`: the
system browser is used). Skips, saying why, when either is missing, unless
KSTREAM_REQUIRE_BROWSER=1 (CI), which turns the skip into a failure.
"""

import os
import shutil
import threading
import time

import pytest

from kstream.observe import Health, Metrics, ObservabilityServer, Timeline

CHROMIUM = os.environ.get("KSTREAM_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def _browser_missing() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as exc:
        return f"playwright for Python is not installed ({exc})"
    if not (os.path.exists(CHROMIUM) or shutil.which(CHROMIUM)):
        return f"chromium not found at {CHROMIUM} (apt-get install chromium)"
    return None


@pytest.fixture
def browser_page():
    missing = _browser_missing()
    if missing:
        if os.environ.get("KSTREAM_REQUIRE_BROWSER") == "1":
            pytest.fail(missing)
        pytest.skip(missing)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            yield page
        finally:
            browser.close()


@pytest.fixture
def live_server():
    metrics = Metrics("wordcount")
    metrics.set_batch_interval(0.5)
    timeline = Timeline(capacity=60)
    health = Health(stall_after=30)
    server = ObservabilityServer("127.0.0.1", 0, metrics, timeline, health, dict).start()
    stop = threading.Event()

    def feed():
        t = 1_700_000_000.0
        i = 0
        while not stop.is_set():
            i += 1
            t += 0.5
            records = 1000 + 100 * (i % 7)
            timeline.add(t, records, 0.1 + 0.05 * (i % 5), 0.01 * (i % 3), records / 0.5)
            metrics.batch_completed(t, records, 0.1, 0.01)
            for p in range(3):
                timeline.set_lag("lines", p, (i * (p + 1)) % 50)
            timeline.set_state_size("counts", 10 * i)
            health.beat()
            if i == 3:
                health.set_ready(True, "")
            stop.wait(0.1)

    # The page loads before the first batch, so it also renders the empty state.
    yield server, feed
    stop.set()
    server.stop()


# Counts pixels of the series colour (#1f77b4) in a canvas.
COUNT_SERIES_PIXELS = """(id) => {
  const c = document.getElementById(id);
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let n = 0;
  for (let i = 0; i < d.length; i += 4) {
    if (d[i + 3] > 200 && Math.abs(d[i] - 31) < 30 && Math.abs(d[i + 1] - 119) < 30
        && Math.abs(d[i + 2] - 180) < 30) n++;
  }
  return n;
}"""


def test_live_page_draws_charts_without_errors(browser_page, live_server):
    page = browser_page
    server, feed = live_server
    problems = []
    page.on("console", lambda m: m.type in ("error", "warning") and problems.append(m.text))
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))
    page.on("response", lambda r: r.status >= 400 and problems.append(f"{r.status}: {r.url}"))

    page.goto(server.url + "/")
    page.wait_for_function("Number(document.body.dataset.updates) >= 1", timeout=10_000)
    assert page.get_attribute("#rate", "data-points") == "0"  # empty timeline
    assert "no partitions assigned" in page.inner_text("#lag-table")

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    start = int(page.get_attribute("body", "data-updates"))
    page.wait_for_function(f"Number(document.body.dataset.updates) >= {start + 3}", timeout=15_000)
    page.wait_for_function(
        "['rate', 'proc', 'delay'].every("
        "id => Number(document.getElementById(id).dataset.points) >= 5)",
        timeout=10_000,
    )

    for chart in ("rate", "proc", "delay"):
        assert page.evaluate(COUNT_SERIES_PIXELS, chart) > 100, chart
    assert page.inner_text("#app") == "wordcount"
    assert page.title() == "kstream \u00b7 wordcount"
    page.wait_for_function("document.getElementById('ready').textContent === 'ready'")
    assert page.inner_text("#alive") == "alive"
    assert page.inner_text("#interval") == "500 ms"
    assert page.inner_text("#last") != "\u2013"
    rows = page.locator("#lag-table tbody tr")
    assert rows.count() == 3
    assert rows.nth(0).inner_text().split()[:2] == ["lines", "0"]
    assert page.locator("#state-table tbody tr").first.inner_text().startswith("counts")

    # hovering a chart reads out the nearest batch
    box = page.locator("#proc").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    assert page.inner_text("#proc-readout").startswith("batch ")

    time.sleep(1.2)  # one more poll after the assertions, still no errors
    assert problems == []
