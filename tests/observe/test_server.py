import json
import time
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from kstream.observe import Health, Metrics, ObservabilityServer, Timeline


def get(url: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.headers["Content-Type"], r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers["Content-Type"], e.read()


@pytest.fixture
def parts():
    metrics = Metrics("wordcount")
    timeline = Timeline(capacity=10)
    health = Health(stall_after=0.5)
    server = ObservabilityServer(
        "127.0.0.1",
        0,
        metrics,
        timeline,
        health,
        topology=lambda: {"stages": [{"name": "source", "topics": ["lines"]}]},
    )
    server.start()
    yield metrics, timeline, health, server
    server.stop()


def test_port_zero_picks_a_free_port(parts):
    *_, server = parts
    assert server.port > 0
    assert server.url == f"http://127.0.0.1:{server.port}"


def test_metrics_endpoint(parts):
    metrics, *_, server = parts
    metrics.records_consumed("lines", 12)
    metrics.set_lag("lines", 3, 40)
    status, ctype, body = get(server.url + "/metrics")
    assert status == 200
    assert ctype.startswith("text/plain")
    text = body.decode()
    assert 'kstream_records_consumed_total{app_id="wordcount",topic="lines"} 12.0' in text
    assert 'kstream_consumer_lag{app_id="wordcount",partition="3",topic="lines"} 40.0' in text
    names = {f.name for f in text_string_to_metric_families(text)}
    assert "kstream_batch_processing_seconds" in names


def test_healthz_turns_503_when_beats_stop(parts):
    _, _, health, server = parts
    health.beat()
    status, ctype, body = get(server.url + "/healthz")
    assert (status, ctype) == (200, "application/json; charset=utf-8")
    assert json.loads(body)["alive"] is True
    time.sleep(0.8)  # no beats for longer than stall_after
    status, _, body = get(server.url + "/healthz")
    assert status == 503
    doc = json.loads(body)
    assert doc["alive"] is False and "stalled" in doc["reason"]
    health.beat()
    assert get(server.url + "/healthz")[0] == 200


def test_readyz_follows_set_ready(parts):
    _, _, health, server = parts
    status, _, body = get(server.url + "/readyz")
    assert status == 503 and json.loads(body) == {"ready": False, "reason": "starting"}
    health.set_ready(False, "restoring store counts")
    status, _, body = get(server.url + "/readyz")
    assert status == 503 and json.loads(body)["reason"] == "restoring store counts"
    health.set_ready(True, "")
    status, _, body = get(server.url + "/readyz")
    assert status == 200 and json.loads(body)["ready"] is True


def test_topology(parts):
    *_, server = parts
    status, _, body = get(server.url + "/topology")
    assert status == 200
    assert json.loads(body) == {"stages": [{"name": "source", "topics": ["lines"]}]}


def test_topology_failure_is_a_500_with_json(parts):
    *_, server = parts

    def broken():
        raise RuntimeError("no graph yet")

    server.topology = broken
    status, _, body = get(server.url + "/topology")
    assert status == 500
    assert json.loads(body) == {"error": "RuntimeError: no graph yet"}


def test_api_timeline(parts):
    metrics, timeline, health, server = parts
    metrics.set_batch_interval(1.0)
    health.set_ready(True, "")
    timeline.add(10.0, 5, 0.1, 0.02, 5.0)
    timeline.set_lag("lines", 0, 3)
    timeline.set_state_size("counts", 9)
    status, _, body = get(server.url + "/api/timeline?x=1")
    assert status == 200
    doc = json.loads(body)
    assert doc["app_id"] == "wordcount"
    assert doc["batch_interval"] == 1.0
    assert doc["health"]["readiness"]["ready"] is True
    assert doc["batches"][0]["records"] == 5
    assert doc["lag"] == [{"topic": "lines", "partition": 0, "lag": 3}]
    assert doc["state"] == [{"store": "counts", "keys": 9}]


def test_page_and_unknown_paths(parts):
    *_, server = parts
    status, ctype, body = get(server.url + "/")
    assert status == 200 and ctype.startswith("text/html")
    page = body.decode()
    assert "api/timeline" in page and "<canvas" in page
    assert "http://" not in page and "https://" not in page  # self-contained
    assert get(server.url + "/favicon.ico")[0] == 204
    status, _, body = get(server.url + "/nope")
    assert status == 404 and "nope" in json.loads(body)["error"]


def test_stop_frees_the_port_and_is_idempotent():
    server = ObservabilityServer("127.0.0.1", 0, Metrics("a"), Timeline(), Health(5), dict)
    with server:
        assert get(server.url + "/readyz")[0] == 503
        url = server.url
    server.stop()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(url + "/healthz", timeout=2)


def test_no_request_log_on_stderr(parts, capfd):
    *_, server = parts
    get(server.url + "/metrics")
    get(server.url + "/missing")
    assert capfd.readouterr().err == ""


def test_a_taken_port_is_an_error_unless_searching_up():
    """Several workers on one machine: each takes the first free port from the default."""
    first = ObservabilityServer("127.0.0.1", 0, Metrics("a"), Timeline(), Health(5), dict).bind()
    taken = first.port
    try:
        with pytest.raises(OSError, match="in use"):
            ObservabilityServer("127.0.0.1", taken, Metrics("b"), Timeline(), Health(5)).bind()
        second = ObservabilityServer(
            "127.0.0.1", taken, Metrics("b"), Timeline(), Health(5), search=True
        ).start()
        try:
            assert second.port > taken and get(second.url + "/readyz")[0] == 503
        finally:
            second.stop()
    finally:
        first.stop()  # bound, never started: stop only closes it
