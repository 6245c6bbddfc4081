"""The replica's HTTP endpoints, on one port (SCHEDULER_HTTP_HOST, SCHEDULER_HTTP_PORT):

    /metrics   Prometheus text format, from the replica's own registry (scheduler/metrics.py)
    /healthz   200 while the process runs and its work loop shows progress, else 503
    /readyz    200 while Redis answers the lease job and the replica leads or stands by, else 503

The probes answer one line of JSON: ``{"status": "ok", ...}`` or ``{"status": "...", "reason":
"..."}``. The server is the standard library's WSGI server, one daemon thread per request, so a slow
scrape never holds a probe up; nothing here talks to Redis. A scrape renders while the work loop
sleeps (Metrics.wait_until_idle), so its CPU time does not land on a pass.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import make_wsgi_app

from scheduler.errors import SchedulerError
from scheduler.metrics import Metrics

Probe = Callable[[], tuple[bool, dict[str, Any]]]
App = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class EndpointsUnavailable(SchedulerError):
    """The HTTP endpoints cannot listen where the settings say (a port in use, an unknown host)."""


def make_app(metrics: Metrics, healthz: Probe, readyz: Probe) -> App:
    """A WSGI app serving /metrics from ``metrics``' registry and the two probes."""
    exposition = make_wsgi_app(metrics.registry)
    probes = {"/healthz": healthz, "/readyz": readyz}

    def scrape(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        metrics.wait_until_idle()
        started = time.monotonic()
        try:
            return exposition(environ, start_response)
        finally:
            metrics.rendered(time.monotonic() - started)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD", "GET")
        if method not in ("GET", "HEAD"):
            return _answer(start_response, "405 Method Not Allowed", {"status": "refused", "reason": "GET only"},
                           method, [("Allow", "GET, HEAD")])
        if path == "/metrics":
            return scrape(environ, start_response)
        probe = probes.get(path)
        if probe is None:
            return _answer(start_response, "404 Not Found",
                           {"status": "not found", "reason": "try /metrics, /healthz or /readyz"}, method)
        try:
            ok, body = probe()
        except Exception as error:  # a probe that fails is an answer too, not a dropped connection
            return _answer(start_response, "500 Internal Server Error",
                           {"status": "error", "reason": f"{type(error).__name__}: {error}"}, method)
        return _answer(start_response, "200 OK" if ok else "503 Service Unavailable", body, method)

    return app


def _answer(start_response: Callable[..., Any], status: str, body: dict[str, Any], method: str,
            headers: list[tuple[str, str]] | None = None) -> list[bytes]:
    data = (json.dumps(body) + "\n").encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data))),
                            ("Cache-Control", "no-store"), *(headers or [])])
    return [] if method == "HEAD" else [data]


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _Server6(_Server):
    address_family = socket.AF_INET6


class _QuietHandler(WSGIRequestHandler):
    """No line per request: Prometheus scrapes and health checks come every few seconds."""

    def log_message(self, format: str, *args: Any) -> None:
        pass


class HttpServer:
    """Binds at once (so a port in use stops the replica before it starts), serves once given an app."""

    def __init__(self, host: str, port: int) -> None:
        server_class = _Server6 if ":" in host else _Server
        try:
            self._server = make_server(host, port, _not_ready, server_class=server_class,
                                       handler_class=_QuietHandler)
        except OSError as error:
            reason = error.strerror or str(error) or type(error).__name__
            raise EndpointsUnavailable(
                f"cannot serve /metrics, /healthz and /readyz on {_where(host, port)}: {reason} "
                "(SCHEDULER_HTTP_HOST, SCHEDULER_HTTP_PORT; SCHEDULER_HTTP_PORT=0 serves none)") from None
        self.host = host
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_port)

    @property
    def url(self) -> str:
        return f"http://{_where(self.host, self.port)}"

    def serve(self, app: App) -> None:
        self._server.set_app(app)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="http", daemon=True)
        self._thread.start()

    def close(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=1)
        self._server.server_close()


def _where(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _not_ready(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    return _answer(start_response, "503 Service Unavailable", {"status": "starting", "reason": "starting"},
                   environ.get("REQUEST_METHOD", "GET"))
