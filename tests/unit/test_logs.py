"""The filter that keeps APScheduler's skipped-run warnings to one a minute per job."""

from __future__ import annotations

import io
import json
import logging

from loguru import logger

from scheduler.logs import SkippedRunsOncePerMinute, json_sink, add_context, set_context


def record(message: str) -> logging.LogRecord:
    return logging.LogRecord("apscheduler.scheduler", logging.WARNING, __file__, 1, message, None, None)


def skipped(job: str, at: str) -> logging.LogRecord:
    return record(f'Execution of job "{job} (trigger: interval[0:00:01], next run at: {at} UTC)" '
                  "skipped: maximum number of running instances reached (1)")


def test_the_first_skip_of_a_job_passes_and_repeats_within_a_minute_do_not():
    now = [100.0]
    keep = SkippedRunsOncePerMinute(clock=lambda: now[0]).filter
    assert keep(skipped("Replica._lease_job", "2026-11-24 14:56:33"))
    now[0] += 0.2
    assert not keep(skipped("Replica._lease_job", "2026-11-24 14:56:34")), "the same job, its next run time aside"
    now[0] += 59
    assert not keep(skipped("Replica._lease_job", "2026-11-24 14:57:32"))
    now[0] += 1
    assert keep(skipped("Replica._lease_job", "2026-11-24 14:57:33")), "a minute on, said again"


def test_each_job_has_its_own_minute_and_other_warnings_always_pass():
    keep = SkippedRunsOncePerMinute(clock=lambda: 5.0).filter
    assert keep(skipped("Replica._lease_job", "2026-11-24 14:56:33"))
    assert keep(skipped("Other._job", "2026-11-24 14:56:33"))
    assert keep(record('Run time of job "Replica._lease_job" was missed by 0:00:03'))
    assert keep(record('Run time of job "Replica._lease_job" was missed by 0:00:03'))


def json_lines(emit) -> list[dict]:
    """What ``emit`` logs through the JSON sink, each line parsed."""
    stream = io.StringIO()
    logger.configure(patcher=add_context)
    sink = logger.add(json_sink(stream), level="INFO")
    try:
        emit(logger)
    finally:
        logger.remove(sink)
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_json_line_is_one_flat_object_with_the_context_and_the_bound_fields():
    set_context(lambda: {"replica": "r-1", "epoch": 12})
    try:
        [line] = json_lines(lambda log: log.bind(schedule="nightly", tick="2026-11-24T03:00:00Z", count=250)
                            .info("schedule {}: tick", "nightly"))
    finally:
        set_context(dict)
    assert line == {"time": line["time"], "level": "INFO", "message": "schedule nightly: tick", "replica": "r-1",
                    "epoch": 12, "schedule": "nightly", "tick": "2026-11-24T03:00:00Z", "count": 250}
    assert line["time"].endswith("Z") and len(line["time"]) == len("2026-11-24T03:00:00.004Z")


def test_a_standby_line_has_no_epoch_and_an_error_carries_its_traceback():
    set_context(lambda: {"replica": "r-2", "epoch": None})

    def emit(log):
        try:
            raise ValueError("boom")
        except ValueError:
            log.opt(exception=True).error("failed")

    try:
        [line] = json_lines(emit)
    finally:
        set_context(dict)
    assert "epoch" not in line and line["replica"] == "r-2" and line["level"] == "ERROR"
    assert "ValueError: boom" in line["exception"]
