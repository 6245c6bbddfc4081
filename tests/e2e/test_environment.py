"""The real `scheduler` commands refuse a SCHEDULER_* variable that is no setting, and a setting's bad
value, in one line and exit 1, before they start anything (README, "Settings")."""

from __future__ import annotations

import json
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from helpers import run_scheduler

SECRET = "typo-pw-never-printed"
TYPO = {"SCHEDULER_REDISURL": f"redis://admin:{SECRET}@redis.internal:6379/0"}
REFUSAL = "SCHEDULER_REDISURL is not a setting (did you mean SCHEDULER_REDIS_URL?)"
UNREAD = "a queue's redis_url_env names are taken from the table at --config"
TABLE = """\
[queues.reports]
type = "sidekiq"
redis_url_env = "SCHEDULER_SIDEKIQ_URL"

[[schedule]]
name = "beat"
every = "1m"
job = "Beat"

[[schedule]]
name = "report"
cron = "0 3 * * *"
job = "Report"
queue = "reports"
"""


def scheduler(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return run_scheduler(*args, env=env, cwd=cwd, timeout=60)


def assert_refused(result: subprocess.CompletedProcess, command: str, *words: str) -> str:
    """Exit 1, nothing on stdout, one line on stderr naming the command and holding ``words``."""
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert SECRET not in result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith(f"scheduler {command}: ")
    for word in words:
        assert word in line
    return line


@pytest.fixture
def table(tmp_path: Path) -> Path:
    path = tmp_path / "schedules.toml"
    path.write_text(TABLE)
    return path


def test_run_refuses_a_misspelt_setting_before_it_starts_anything(table):
    result = scheduler("run", "--config", str(table), env={**TYPO, "SCHEDULER_HTTP_PORT": "0"}, cwd=table.parent)
    line = assert_refused(result, "run")
    assert line == f"scheduler run: {REFUSAL}"
    assert not (table.parent / ".scheduler").exists(), "the embedded Redis must not have started"
    assert "acquired the lease" not in result.stderr
    assert "embedded Redis" not in result.stderr


@pytest.mark.parametrize("command", [
    pytest.param(["validate"], id="validate"),
    pytest.param(["dry-run", "--from", "2026-11-02T00:00:00Z", "--for", "1h"], id="dry-run"),
])
def test_validate_and_dry_run_refuse_a_misspelt_setting(table, command):
    assert scheduler(*command, "--config", str(table), env={}, cwd=table.parent).returncode == 0
    line = assert_refused(scheduler(*command, "--config", str(table), env=TYPO, cwd=table.parent), command[0])
    assert line == f"scheduler {command[0]}: {REFUSAL}"


@pytest.mark.parametrize("command", [
    pytest.param(["status"], id="status"),
    pytest.param(["pause", "beat"], id="pause"),
    pytest.param(["resume", "beat"], id="resume"),
    pytest.param(["trigger", "beat", "--wait", "0.1"], id="trigger"),
    pytest.param(["history", "beat"], id="history"),
    pytest.param(["backfill", "beat", "--from", "2026-11-02T00:00:00Z", "--until", "2026-11-02T01:00:00Z",
                  "--wait", "0.1"], id="backfill"),
])
def test_the_operators_commands_refuse_a_misspelt_setting_without_touching_redis(table, redis_client,
                                                                                  redis_server, command):
    connections = redis_client.info("stats")["total_connections_received"]
    env = {**TYPO, "SCHEDULER_REDIS_URL": redis_server.url}
    line = assert_refused(scheduler(*command, "--config", str(table), env=env, cwd=table.parent), command[0])
    assert line == f"scheduler {command[0]}: {REFUSAL}"
    assert redis_client.info("stats")["total_connections_received"] == connections, "no connection at all"
    assert redis_client.dbsize() == 0


def test_acl_refuses_a_misspelt_setting(table):
    assert scheduler("acl", env={}, cwd=table.parent).returncode == 0
    assert assert_refused(scheduler("acl", env=TYPO, cwd=table.parent), "acl") == f"scheduler acl: {REFUSAL}"


# -- health: it runs as the container's HEALTHCHECK, in the table's folder ---------------------------


class _Healthy(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        body = json.dumps({"status": "ok"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def healthz():
    """A /healthz answering 200 on a free loopback port: the settings that reach it."""
    server = HTTPServer(("127.0.0.1", 0), _Healthy)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield {"SCHEDULER_HTTP_PORT": str(server.server_port)}
    server.shutdown()
    server.server_close()


def test_health_needs_no_table_when_every_variable_is_a_setting(tmp_path, healthz):
    result = scheduler("health", env=healthz, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.endswith("/healthz: ok\n")


def test_health_allows_a_queue_url_variable_of_the_table_in_its_folder(table, healthz):
    env = {**healthz, "SCHEDULER_SIDEKIQ_URL": f"redis://:{SECRET}@sidekiq.internal:6379/0"}
    result = scheduler("health", env=env, cwd=table.parent)
    assert result.returncode == 0, result.stderr
    result = scheduler("health", "--config", str(table), env=env, cwd=table.parent.parent)
    assert result.returncode == 0, result.stderr


def test_health_refuses_a_misspelt_setting(table, healthz):
    line = assert_refused(scheduler("health", env={**healthz, **TYPO}, cwd=table.parent), "health")
    assert line == f"scheduler health: {REFUSAL}"


def test_without_its_table_health_allows_only_the_settings_and_says_where_the_names_come_from(tmp_path, healthz):
    env = {**healthz, "SCHEDULER_SIDEKIQ_URL": f"redis://:{SECRET}@sidekiq.internal:6379/0"}
    line = assert_refused(scheduler("health", env=env, cwd=tmp_path), "health")
    assert line == ("scheduler health: SCHEDULER_SIDEKIQ_URL is not a setting (did you mean SCHEDULER_REDIS_URL?); "
                    f"{UNREAD}, and schedules.toml cannot be read (No such file or directory)")


def test_a_table_that_is_not_toml_cannot_name_variables(tmp_path):
    (tmp_path / "schedules.toml").write_text("[queues.reports\n")
    result = scheduler("validate", env={"SCHEDULER_SIDEKIQ_URL": "redis://x"}, cwd=tmp_path)
    assert_refused(result, "validate", "SCHEDULER_SIDEKIQ_URL is not a setting", UNREAD,
                   "schedules.toml cannot be read (Expected ']' at the end of a table declaration")


# -- what is allowed, and several at once -----------------------------------------------------------


def test_a_queues_redis_url_env_is_allowed_and_no_other(table):
    env = {"SCHEDULER_SIDEKIQ_URL": f"redis://:{SECRET}@sidekiq.internal:6379/0"}
    result = scheduler("validate", "--config", str(table), env=env, cwd=table.parent)
    assert result.returncode == 0, result.stderr
    line = assert_refused(scheduler("validate", "--config", str(table), env={**env, "SCHEDULER_CELERY_URL": "x"},
                                    cwd=table.parent), "validate")
    assert line == "scheduler validate: SCHEDULER_CELERY_URL is not a setting"


def test_a_table_with_problems_still_names_its_queue_variables_so_its_problems_are_shown(tmp_path):
    (tmp_path / "schedules.toml").write_text(TABLE + '\n[[schedule]]\nname = "broken"\nevery = "soon"\njob = "X"\n')
    result = scheduler("validate", env={"SCHEDULER_SIDEKIQ_URL": "redis://x"}, cwd=tmp_path)
    assert result.returncode == 1
    assert "every 'soon'" in result.stderr
    assert "is not a setting" not in result.stderr


def test_every_unknown_variable_is_named_on_one_line(table):
    env = {**TYPO, "SCHEDULER_LEASETTL": "5s", "SCHEDULER_WHATEVER": SECRET}
    line = assert_refused(scheduler("validate", "--config", str(table), env=env, cwd=table.parent), "validate")
    assert line == ("scheduler validate: SCHEDULER_LEASETTL is not a setting (did you mean SCHEDULER_LEASE_TTL?); "
                    f"{REFUSAL}; SCHEDULER_WHATEVER is not a setting")


def test_a_setting_in_mixed_case_is_read_and_a_lower_case_prefix_is_not_ours(table):
    env = {"SCHEDULER_Log_Level": "debug", "scheduler_redisurl": "redis://x"}
    result = scheduler("validate", "--config", str(table), env=env, cwd=table.parent)
    assert result.returncode == 0, result.stderr


# -- bad values ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("variable", "value", "words"), [
    pytest.param("SCHEDULER_LOG_LEVEL", "verbose", "SCHEDULER_LOG_LEVEL: must be one of TRACE, DEBUG, INFO",
                 id="log-level"),
    pytest.param("SCHEDULER_RETRY_INTERVAL", "99999999d", "SCHEDULER_RETRY_INTERVAL: must be at most 3650d",
                 id="retry-interval"),
])
def test_run_refuses_a_bad_value_in_one_line(table, variable, value, words):
    result = scheduler("run", "--config", str(table), env={variable: value, "SCHEDULER_HTTP_PORT": "0"},
                       cwd=table.parent)
    assert_refused(result, "run", words)
    assert not (table.parent / ".scheduler").exists()


def test_health_refuses_a_host_it_could_not_put_in_a_url(tmp_path):
    assert_refused(scheduler("health", env={"SCHEDULER_HTTP_HOST": "a b"}, cwd=tmp_path), "health",
                   "SCHEDULER_HTTP_HOST: must be a host name or an IP address")
