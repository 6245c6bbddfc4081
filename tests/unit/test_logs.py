"""The filter that keeps APScheduler's skipped-run warnings to one a minute per job."""

from __future__ import annotations

import logging

from scheduler.logs import SkippedRunsOncePerMinute


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
