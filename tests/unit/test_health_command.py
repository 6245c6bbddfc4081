"""`scheduler health` against a real HTTP server on a free port: one line, exit 0 on 200, else 1."""

from __future__ import annotations

import os
import socket

import pytest
from probes import Probes

from scheduler.cli.main import main
from scheduler.metrics import Metrics
from scheduler.replica.endpoints import HttpServer, make_app


@pytest.fixture
def probes() -> Probes:
    return Probes()


@pytest.fixture
def server(probes):
    server = HttpServer("127.0.0.1", 0)
    server.serve(make_app(Metrics(), probes.healthz, probes.readyz))
    yield server
    server.close()




@pytest.fixture
def environment(monkeypatch):
    for name in list(os.environ):
        if name.startswith("SCHEDULER_"):
            monkeypatch.delenv(name)
    return monkeypatch


def test_health_exits_0_on_200_and_1_otherwise(server, probes, environment, capsys):
    environment.setenv("SCHEDULER_HTTP_PORT", str(server.port))
    assert main(["health"]) == 0
    assert capsys.readouterr().out == f"{server.url}/healthz: ok\n"
    assert main(["health", "--ready"]) == 0
    assert capsys.readouterr().out == f"{server.url}/readyz: ok, leading, epoch 7\n"

    probes.healthy = (False, {"status": "stalled", "reason": "the work loop has made no progress for 12.3s"})
    assert main(["health"]) == 1
    err = capsys.readouterr().err
    assert err == (f"scheduler health: {server.url}/healthz: HTTP 503: stalled, "
                   "the work loop has made no progress for 12.3s\n")


def test_health_asks_loopback_when_the_server_listens_everywhere(server, environment, capsys):
    environment.setenv("SCHEDULER_HTTP_HOST", "0.0.0.0")
    environment.setenv("SCHEDULER_HTTP_PORT", str(server.port))
    assert main(["health"]) == 0
    assert capsys.readouterr().out.startswith(f"http://127.0.0.1:{server.port}/healthz: ok")


def test_health_exits_1_when_nothing_listens_or_the_server_is_off(environment, capsys):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    environment.setenv("SCHEDULER_HTTP_PORT", str(port))
    assert main(["health"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"scheduler health: http://127.0.0.1:{port}/healthz: no answer: ") and err.count("\n") == 1
    environment.setenv("SCHEDULER_HTTP_PORT", "0")
    assert main(["health"]) == 1
    assert "SCHEDULER_HTTP_PORT=0" in capsys.readouterr().err
