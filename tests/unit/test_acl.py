"""The scheduler's Redis ACL as `scheduler acl` renders it: the rules, the selectors for tenant sets
and queue keys, the two printed forms, and the command's refusals. Whether Redis accepts the rules,
and whether they are enough, is tested against a real redis-server (integration/test_tls_acl.py and
e2e/test_redis_access.py)."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
from helpers import queue_entries

from scheduler.acl import PASSWORD_PLACEHOLDER, Acl, commands, glob_escape, queue_keys, render
from scheduler.cli.main import build_parser, main
from scheduler.table import load_table

TABLE = queue_entries("reports", "rails", "billing") + """
[queues.elsewhere]
type = "sidekiq"
redis_url_env = "SIDEKIQ_REDIS_URL"

[queues.jobs]
type = "redis-stream"
stream = "jobs:{app}"

""" + queue_entries("exports")
QUEUES = ["reports", "rails", "billing", "elsewhere", "jobs", "exports", "default", "reports"]


def table_file(directory: Path) -> Path:
    path = directory / "schedules.toml"
    path.write_text(TABLE + "".join(f'\n[[schedule]]\nname = "s{n}"\nevery = "1m"\njob = "J"\nqueue = "{queue}"\n'
                                    for n, queue in enumerate(QUEUES)))
    return path


def test_the_default_rules_grant_the_prefix_its_channels_and_named_commands_only():
    rules = Acl().rules()
    assert rules[:3] == ["~{scheduler}:*", "&{scheduler}:*", "-@all"]
    assert all(rule.startswith("+") and "@" not in rule for rule in rules[3:]), "commands, no categories"
    for needed in ("+evalsha", "+script|load", "+time", "+info", "+ping", "+subscribe", "+publish", "+xread",
                   "+xdel", "+xlen", "+xrange", "+smembers", "+sscan", "+mget", "+get", "+hset", "+zadd"):
        assert needed in rules
    assert "allkeys" not in rules and "~*" not in rules and "&*" not in rules
    assert len(set(rules)) == len(rules)


@pytest.mark.parametrize("command", ["eval", "keys", "scan", "flushall", "flushdb", "config", "debug", "shutdown",
                                     "acl", "monitor", "client", "client|kill", "client|setinfo", "script|flush",
                                     "sort", "migrate", "restore", "lpush", "rename"])
def test_nothing_dangerous_or_unused_is_granted_on_the_scheduler_keys(command):
    assert command not in commands()


def test_tenant_keys_get_their_own_read_only_selector_with_sscan_alone():
    rules = render(tenant_keys=["tenants:*", "customers:active"]).rules()
    assert rules[-1] == "(+sscan +sismember +scard %R~tenants:* %R~customers:active)"


def test_queue_keys_share_a_selector_with_the_prefix_because_a_script_call_names_both():
    rules = render(queue_keys=["queues", "queue:reports", "billing-tasks"]).rules()
    assert rules[-1] == "(+evalsha +lpush +sadd ~{scheduler}:* ~queues ~queue:reports ~billing-tasks)"


def test_flat_folds_the_selectors_into_the_root_rules_for_engines_without_them():
    rules = render(tenant_keys=["tenants:*"], queue_keys=["queues", "queue:reports"], flat=True).rules()
    assert rules[:5] == ["~{scheduler}:*", "~queues", "~queue:reports", "%R~tenants:*", "&{scheduler}:*"]
    assert "+lpush" in rules and not any(rule.startswith("(") for rule in rules)
    assert render(flat=True).rules() == render().rules(), "nothing to fold"


def test_glob_characters_in_the_prefix_and_queue_names_match_only_themselves():
    assert glob_escape("a*b?c[d]e\\f") == "a\\*b\\?c\\[d\\]e\\\\f"
    rules = render("app[1]{sched}", queue_keys=["queue:x*"]).rules()
    assert rules[0] == "~app\\[1\\]{sched}:*"
    assert "~queue:x\\*" in rules[-1]


def test_the_setuser_line_resets_the_user_and_leaves_the_password_to_type_in():
    line = render(tenant_keys=["tenants:*"], queue_keys=["queues"]).setuser_line("sched")
    assert line.startswith(f"ACL SETUSER sched reset on >{PASSWORD_PLACEHOLDER} ~{{scheduler}}:* ")
    words = shlex.split(line)
    assert words[-2:] == ["(+sscan +sismember +scard %R~tenants:*)", "(+evalsha +lpush +sadd ~{scheduler}:* ~queues)"]
    assert words[2:] == render(tenant_keys=["tenants:*"], queue_keys=["queues"]).setuser("sched")[2:]


def test_a_rule_with_a_backslash_or_quote_is_quoted_for_redis_cli():
    line = Acl(prefix='a\\{s}"').setuser_line()
    assert '"~a\\\\\\\\{s}\\":*"' in line


def test_the_access_string_is_the_same_rules_without_user_password_or_reset():
    acl = render(tenant_keys=["tenants:*"], queue_keys=["queues"])
    text = acl.access_string()
    assert text == " ".join(["on", *acl.rules()])
    assert "reset" not in text and ">" not in text and "SETUSER" not in text


def test_queue_keys_are_what_the_tables_sidekiq_celery_and_outside_streams_write_once_each(tmp_path):
    keys = queue_keys(load_table(table_file(tmp_path)), "{scheduler}")
    # Sidekiq here and in its own Redis (the same user serves both), Celery's list under its own
    # name, a stream named outside the prefix; nothing for SQS or the default stream.
    assert keys == ["queues", "queue:reports", "queue:mailers", "billing-tasks", "queue:elsewhere", "jobs:{app}"]


def test_scheduler_acl_prints_both_forms(capsys, monkeypatch):
    monkeypatch.delenv("SCHEDULER_KEY_PREFIX", raising=False)
    assert main(["acl", "--tenant-keys", "tenants:*"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4 and lines[0].startswith("# ") and lines[2].startswith("# ")
    assert lines[1] == render(tenant_keys=["tenants:*"]).setuser_line()
    assert lines[3] == render(tenant_keys=["tenants:*"]).access_string()


def test_scheduler_acl_takes_the_prefix_from_the_setting_or_the_option(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("SCHEDULER_KEY_PREFIX", "app{jobs}")
    assert main(["acl", "--format", "access-string"]) == 0
    assert capsys.readouterr().out == render("app{jobs}").access_string() + "\n"
    assert main(["acl", "--format", "setuser", "--prefix", "{other}", "--user", "cron"]) == 0
    assert capsys.readouterr().out == render("{other}").setuser_line("cron") + "\n"


def test_scheduler_acl_adds_the_tables_queue_keys(capsys, tmp_path, monkeypatch):
    monkeypatch.delenv("SCHEDULER_KEY_PREFIX", raising=False)
    config = table_file(tmp_path)
    assert main(["acl", "--queue-keys", "--config", str(config), "--format", "access-string"]) == 0
    expected = render(queue_keys=queue_keys(load_table(config), "{scheduler}")).access_string()
    assert capsys.readouterr().out == expected + "\n"


@pytest.mark.parametrize("arguments, message", [
    (["--prefix", "nohashtag"], "--prefix 'nohashtag': must hold exactly one {hash tag}"),
    (["--user", "two words"], "--user 'two words': must be non-empty, without spaces"),
    (["--tenant-keys", "tenants:* other"], "--tenant-keys 'tenants:* other': must be non-empty, without spaces"),
])
def test_scheduler_acl_refuses_bad_options_in_one_line(capsys, arguments, message):
    assert main(["acl", *arguments]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"scheduler acl: {message}")
    assert len(captured.err.splitlines()) == 1


def test_scheduler_acl_with_queue_keys_and_a_broken_table_lists_its_problems(capsys, tmp_path):
    config = tmp_path / "schedules.toml"
    config.write_text('[[schedule]]\nname = "s"\njob = "J"\n')
    assert main(["acl", "--queue-keys", "--config", str(config)]) == 1
    assert "cron or every is required" in capsys.readouterr().err


def test_the_acl_command_is_registered():
    assert "acl" in build_parser()._subparsers._group_actions[0].choices


def test_docs_redis_md_shows_what_scheduler_acl_prints_for_the_sample_table(capsys, monkeypatch):
    """docs/redis.md pastes the command's output: it must not drift from the code."""
    root = Path(__file__).resolve().parents[2]
    monkeypatch.delenv("SCHEDULER_KEY_PREFIX", raising=False)
    assert main(["acl", "--tenant-keys", "tenants:*", "--queue-keys", "--config", str(root / "schedules.toml")]) == 0
    printed = capsys.readouterr().out
    assert printed in (root / "docs" / "redis.md").read_text()
