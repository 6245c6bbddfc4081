"""The HTTP endpoints: the WSGI app's answers, the server on a real socket, a port in use."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from wsgiref.util import setup_testing_defaults

import pytest
from probes import Probes

from scheduler.metrics import Metrics
from scheduler.replica.endpoints import EndpointsUnavailable, HttpServer, make_app

DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def call(app, path: str, method: str = "GET") -> tuple[str, dict[str, str], bytes]:
    environ: dict = {"PATH_INFO": path, "REQUEST_METHOD": method}
    setup_testing_defaults(environ)
    answer: dict = {}

    def start_response(status, headers, exc_info=None):
        answer["status"], answer["headers"] = status, dict(headers)

    body = b"".join(app(environ, start_response))
    return answer["status"], answer["headers"], body


@pytest.fixture
def probes() -> Probes:
    return Probes()


@pytest.fixture
def app(probes):
    metrics = Metrics()
    metrics.skipped("nightly", "catchup", 2)
    return make_app(metrics, probes.healthz, probes.readyz)


def test_the_probes_answer_200_with_one_line_of_json(app):
    status, headers, body = call(app, "/healthz")
    assert status == "200 OK" and headers["Content-Type"] == "application/json"
    assert body == b'{"status": "ok"}\n'
    status, _, body = call(app, "/readyz")
    assert status == "200 OK"
    assert json.loads(body) == {"status": "ok", "state": "leading", "leader": True, "epoch": 7}


def test_a_failing_probe_answers_503_with_its_reason(app, probes):
    probes.healthy = (False, {"status": "stalled", "reason": "the work loop has made no progress for 12.3s"})
    status, _, body = call(app, "/healthz")
    assert status == "503 Service Unavailable"
    assert body.count(b"\n") == 1 and json.loads(body)["reason"].startswith("the work loop")


def test_a_probe_that_raises_is_a_500_not_a_dropped_connection(app, probes):
    probes.ready = RuntimeError("boom")
    status, _, body = call(app, "/readyz")
    assert status.startswith("500") and json.loads(body)["reason"] == "RuntimeError: boom"


def test_metrics_are_the_registrys_in_the_text_format(app):
    status, headers, body = call(app, "/metrics")
    assert status.startswith("200") and headers["Content-Type"].startswith("text/plain")
    assert b'scheduler_firings_skipped_total{reason="catchup",schedule="nightly"} 2.0' in body


def test_other_paths_and_methods_are_refused(app):
    assert call(app, "/")[0].startswith("404")
    assert call(app, "/healthz", "POST")[0].startswith("405")
    status, _, body = call(app, "/healthz", "HEAD")
    assert status == "200 OK" and body == b""


# -- the server ---------------------------------------------------------------------------------


def get(url: str) -> tuple[int, bytes]:
    try:
        with DIRECT.open(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_the_server_serves_the_app_and_stops(app):
    server = HttpServer("127.0.0.1", 0)
    server.serve(app)
    assert get(server.url + "/healthz") == (200, b'{"status": "ok"}\n')
    assert get(server.url + "/metrics")[0] == 200
    server.close()
    with pytest.raises(urllib.error.URLError):
        DIRECT.open(server.url + "/healthz", timeout=2)


def test_a_server_not_yet_serving_says_it_is_starting():
    server = HttpServer("127.0.0.1", 0)
    try:
        server.serve(server._server.get_app())
        status, body = get(server.url + "/readyz")
        assert status == 503 and json.loads(body)["status"] == "starting"
    finally:
        server.close()


def test_a_port_in_use_is_one_clear_error():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(EndpointsUnavailable) as refused:
            HttpServer("127.0.0.1", port)
    message = str(refused.value)
    assert message.startswith(f"cannot serve /metrics, /healthz and /readyz on 127.0.0.1:{port}: ")
    assert "in use" in message and "SCHEDULER_HTTP_PORT" in message and "\n" not in message
