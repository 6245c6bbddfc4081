"""One ExitCode for every command, and the code each error of the tree maps to."""

from __future__ import annotations

import pytest

from scheduler.cli import main as cli
from scheduler.errors import (
    ExitCode,
    NotLeader,
    Problem,
    RedisPermissionError,
    RedisUnavailable,
    SchedulerError,
    SettingsError,
    TableError,
    UsageError,
)
from scheduler.replica.endpoints import EndpointsUnavailable


def test_the_exit_codes_keep_their_numbers():
    assert {code.name: int(code) for code in ExitCode} == {
        "OK": 0, "REFUSED": 1, "USAGE": 2, "UNAVAILABLE": 3, "CRASHED": 4, "BUSY": 5, "INTERRUPTED": 130,
    }
    assert cli.ExitCode is ExitCode


@pytest.mark.parametrize(("error", "code"), [
    pytest.param(TableError([Problem("schedules.toml", 1, "", "bad")]), ExitCode.REFUSED, id="table"),
    pytest.param(SettingsError("SCHEDULER_REDISURL is not a setting"), ExitCode.REFUSED, id="settings"),
    pytest.param(UsageError("--count '0': must be a whole number, 1 or more"), ExitCode.REFUSED, id="usage"),
    pytest.param(EndpointsUnavailable("cannot serve"), ExitCode.REFUSED, id="endpoints"),
    pytest.param(NotLeader("r1", 3), ExitCode.REFUSED, id="not-leader"),
    pytest.param(RedisUnavailable("cannot reach Redis"), ExitCode.UNAVAILABLE, id="redis-unavailable"),
    pytest.param(RedisPermissionError("reading", "NOPERM"), ExitCode.UNAVAILABLE, id="redis-permission"),
])
def test_each_error_carries_its_exit_code(error, code):
    assert isinstance(error, SchedulerError)
    assert error.exit_code is code


def test_a_refused_argument_is_one_line_and_exit_1_not_argparses_2(capsys):
    assert cli.main(["dry-run", "--count", "0"]) is ExitCode.REFUSED
    assert capsys.readouterr().err == "scheduler dry-run: --count '0': must be a whole number, 1 or more\n"
    with pytest.raises(SystemExit) as usage:
        cli.main(["dry-run", "--no-such-option"])
    assert usage.value.code == ExitCode.USAGE
