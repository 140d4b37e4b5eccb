"""The HTTP endpoints on the metrics port, served from a daemon thread.

/metrics       Prometheus text format
/healthz       200 while the batch loop beats, else 503 (JSON body with the reason)
/readyz        200 when ready, else 503 (JSON body with the reason)
/topology      JSON from the `topology` callable
/api/timeline  JSON: the timeline snapshot plus app id, batch interval and health
/              the live batch-timeline page
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.resources import files
from urllib.parse import urlsplit

from kstream.observe.health import Health
from kstream.observe.metrics import CONTENT_TYPE, Metrics
from kstream.observe.timeline import Timeline

log = logging.getLogger(__name__)

JSON = "application/json; charset=utf-8"
SEARCHED_PORTS = 100  # with search=True, the ports tried from the one asked for up


def _page() -> bytes:
    return files("kstream.observe").joinpath("page.html").read_bytes()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    observe: ObservabilityServer

    def handle_error(self, request, client_address) -> None:
        # The default prints a traceback to stderr; keep it in the logs instead.
        log.debug("observability request from %s failed", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "kstream"

    def log_message(self, format: str, *args) -> None:
        pass  # no request log on stderr

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def do_GET(self) -> None:
        self._serve(head=False)

    def _serve(self, head: bool) -> None:
        path = urlsplit(self.path).path
        try:
            status, content_type, body = self.server.observe.route(path)
        except Exception as exc:
            log.exception("observability endpoint %s failed", path)
            status, content_type = 500, JSON
            body = json.dumps({"error": f"{type(exc).__name__}: {exc}"}).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if not head:
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.wfile.write(body)  # the client may have gone away


class ObservabilityServer:
    def __init__(
        self,
        host: str,
        port: int,
        metrics: Metrics,
        timeline: Timeline,
        health: Health,
        topology: Callable[[], dict] | None = None,
        search: bool = False,
    ) -> None:
        self.host = host
        self.port = port  # the bound port once bound (port 0 picks a free one)
        self.search = search  # the port is taken: take the first free one above it
        self.metrics = metrics
        self.timeline = timeline
        self.health = health
        self.topology = topology or dict
        self._page = _page()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    def bind(self) -> ObservabilityServer:
        """Take the port now (requests wait until `start`); OSError if it is taken, or
        with `search` if all SEARCHED_PORTS from it up are."""
        if self._httpd is not None:
            return self
        last = self.port + (SEARCHED_PORTS - 1 if self.search and self.port else 0)
        for port in range(self.port, last + 1):
            try:
                httpd = _Server((self.host, port), _Handler)
                break
            except OSError as e:
                if e.errno != errno.EADDRINUSE or port == last:
                    raise
        httpd.observe = self
        self.port = httpd.server_address[1]
        self._httpd = httpd
        return self

    def start(self) -> ObservabilityServer:
        if self._thread is not None:
            raise RuntimeError("already started")
        httpd = self.bind()._httpd
        assert httpd is not None
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.2},
            name=f"kstream-observe-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd, thread = self._httpd, self._thread
        if httpd is None:
            return
        self._httpd = self._thread = None
        if thread is not None:  # serving, not only bound
            httpd.shutdown()
        httpd.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> ObservabilityServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- routes --------------------------------------------------------------------

    def route(self, path: str) -> tuple[int, str, bytes]:
        """(status, content type, body) for a GET of `path`."""
        if path == "/metrics":
            return 200, CONTENT_TYPE, self.metrics.exposition()
        if path == "/healthz":
            body = self.health.liveness()
            return (200 if body["alive"] else 503), JSON, _json(body)
        if path == "/readyz":
            body = self.health.readiness()
            return (200 if body["ready"] else 503), JSON, _json(body)
        if path == "/topology":
            return 200, JSON, _json(self.topology())
        if path == "/api/timeline":
            return 200, JSON, _json(self.timeline_payload())
        if path in ("/", "/index.html"):
            return 200, "text/html; charset=utf-8", self._page
        if path == "/favicon.ico":
            return 204, "image/x-icon", b""
        return 404, JSON, _json({"error": f"no such endpoint: {path}"})

    def timeline_payload(self) -> dict:
        return {
            "app_id": self.metrics.app_id,
            "batch_interval": self.metrics.batch_interval,
            "health": self.health.status(),
            **self.timeline.snapshot(),
        }


def _json(obj: object) -> bytes:
    return json.dumps(obj, allow_nan=False, default=str).encode()
