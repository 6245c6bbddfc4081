"""Settings from SCHEDULER_* variables: defaults, overrides, errors naming the variable, no leaked password,
and the SCHEDULER_* names that are no setting."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest

from scheduler.errors import SchedulerError, SettingsError
from scheduler.settings import Settings, load_settings, unknown_variables

PASSWORD = "hunter2-s3cret"
URL = f"redis://admin:{PASSWORD}@redis.internal:6380/0"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    """No SCHEDULER_* or ECS variable from the machine running the tests leaks in."""
    for name in list(os.environ):
        if name.startswith("SCHEDULER_") or name.startswith("ECS_CONTAINER_METADATA_URI"):
            monkeypatch.delenv(name)


def test_defaults():
    settings = load_settings()
    assert settings.lease_ttl == timedelta(seconds=10)
    assert settings.retry_interval == timedelta(seconds=1)
    assert settings.reload_interval == timedelta(seconds=2)
    assert settings.key_prefix == "{scheduler}"
    assert settings.redis_url is None
    assert (settings.http_host, settings.http_port) == ("127.0.0.1", 9108), "loopback unless configured"
    assert settings.eligible is True
    assert settings.ecs_task_protection is False


@pytest.mark.parametrize(
    ("variable", "value", "field", "expected"),
    [
        pytest.param("SCHEDULER_LEASE_TTL", "10s", "lease_ttl", timedelta(seconds=10), id="lease-ttl-duration"),
        pytest.param("SCHEDULER_LEASE_TTL", "2.5", "lease_ttl", timedelta(seconds=2.5), id="lease-ttl-plain-seconds"),
        pytest.param("SCHEDULER_LEASE_TTL", "1m30s", "lease_ttl", timedelta(seconds=90), id="lease-ttl-compound"),
        pytest.param("SCHEDULER_LEASE_TTL", " 15 ", "lease_ttl", timedelta(seconds=15), id="lease-ttl-padded-integer"),
        pytest.param("SCHEDULER_RETRY_INTERVAL", "250ms", "retry_interval", timedelta(milliseconds=250), id="retry-ms"),
        pytest.param("SCHEDULER_RETRY_INTERVAL", "0.5", "retry_interval", timedelta(milliseconds=500), id="retry-plain"),
        pytest.param("SCHEDULER_RELOAD_INTERVAL", "5s", "reload_interval", timedelta(seconds=5), id="reload-interval"),
        pytest.param("SCHEDULER_KEY_PREFIX", "app:{jobs}", "key_prefix", "app:{jobs}", id="key-prefix-with-hash-tag"),
        pytest.param("SCHEDULER_REPLICA_ID", "replica-a", "replica_id", "replica-a", id="replica-id"),
        pytest.param("SCHEDULER_LOG_JSON", "true", "log_json", True, id="log-json"),
        pytest.param("SCHEDULER_HTTP_HOST", "0.0.0.0", "http_host", "0.0.0.0", id="http-host"),
        pytest.param("SCHEDULER_HTTP_PORT", "9200", "http_port", 9200, id="http-port"),
        pytest.param("SCHEDULER_HTTP_PORT", "0", "http_port", 0, id="http-port-off"),
        pytest.param("SCHEDULER_ELIGIBLE", "false", "eligible", False, id="not-eligible"),
        pytest.param("SCHEDULER_ECS_TASK_PROTECTION", "true", "ecs_task_protection", True, id="ecs-task-protection"),
        pytest.param("SCHEDULER_LOG_LEVEL", "debug", "log_level", "DEBUG", id="log-level-lower-case"),
        pytest.param("SCHEDULER_LOG_LEVEL", " Success ", "log_level", "SUCCESS", id="log-level-padded-mixed-case"),
        pytest.param("SCHEDULER_HTTP_HOST", " ::1 ", "http_host", "::1", id="http-host-padded-ipv6"),
        pytest.param("SCHEDULER_HISTORY_KEEP", "3650d", "history_keep", timedelta(days=3650), id="history-keep-longest"),
    ],
)
def test_environment_overrides(monkeypatch, variable, value, field, expected):
    monkeypatch.setenv(variable, value)
    assert getattr(load_settings(), field) == expected


def test_redis_url_is_a_secret(monkeypatch):
    monkeypatch.setenv("SCHEDULER_REDIS_URL", URL)
    settings = load_settings()
    assert settings.redis_url.get_secret_value() == URL
    assert PASSWORD not in repr(settings)
    assert PASSWORD not in str(settings)


@pytest.mark.parametrize(
    ("variable", "value", "reason"),
    [
        pytest.param("SCHEDULER_LEASE_TTL", "soon", "is not a duration", id="lease-ttl-word"),
        pytest.param("SCHEDULER_LEASE_TTL", "0s", "must be longer than zero", id="lease-ttl-zero-duration"),
        pytest.param("SCHEDULER_LEASE_TTL", "", "is not a duration", id="lease-ttl-empty"),
        pytest.param("SCHEDULER_RETRY_INTERVAL", "5x", "is not a duration", id="retry-interval-bad-unit"),
        pytest.param("SCHEDULER_RELOAD_INTERVAL", "-2s", "is not a duration", id="reload-interval-negative-duration"),
        pytest.param("SCHEDULER_KEY_PREFIX", "scheduler", "exactly one {hash tag}", id="key-prefix-without-hash-tag"),
        pytest.param("SCHEDULER_KEY_PREFIX", "{a}{b}", "exactly one {hash tag}", id="key-prefix-two-hash-tags"),
        pytest.param("SCHEDULER_KEY_PREFIX", "}a{", "exactly one {hash tag}", id="key-prefix-reversed-braces"),
        pytest.param("SCHEDULER_LOG_JSON", "maybe", "valid boolean", id="log-json-not-a-boolean"),
        pytest.param("SCHEDULER_HTTP_PORT", "65536", "less than or equal to 65535", id="http-port-too-high"),
        pytest.param("SCHEDULER_HTTP_PORT", "-1", "greater than or equal to 0", id="http-port-negative"),
        pytest.param("SCHEDULER_ELIGIBLE", "sometimes", "valid boolean", id="eligible-not-a-boolean"),
        pytest.param("SCHEDULER_LOG_LEVEL", "verbose", "must be one of TRACE, DEBUG, INFO, SUCCESS, WARNING, ERROR, "
                     "CRITICAL", id="log-level-unknown-to-loguru"),
        pytest.param("SCHEDULER_LOG_LEVEL", "10", "must be one of", id="log-level-a-number"),
        pytest.param("SCHEDULER_HTTP_HOST", "a b", "a host name or an IP address", id="http-host-with-a-space"),
        pytest.param("SCHEDULER_HTTP_HOST", "a%20b", "a host name or an IP address", id="http-host-percent-encoded"),
        pytest.param("SCHEDULER_REDIS_URL", "redis://[::1", "is not a URL", id="redis-url-unclosed-bracket"),
        pytest.param("SCHEDULER_RETRY_INTERVAL", "99999999d", "must be at most 3650d", id="retry-interval-too-long"),
        pytest.param("SCHEDULER_HISTORY_KEEP", "3651d", "must be at most 3650d", id="history-keep-too-long"),
        pytest.param("SCHEDULER_STALL_TIMEOUT", "99999999999d", "is too long", id="stall-timeout-beyond-timedelta"),
        pytest.param("SCHEDULER_HISTORY_LINES", "1" + "0" * 22, "less than or equal to 1000000000",
                     id="history-lines-too-many"),
    ],
)
def test_a_bad_value_names_its_variable(monkeypatch, variable, value, reason):
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as raised:
        load_settings()
    message = str(raised.value)
    assert message.startswith(f"{variable}: ")
    assert reason in message
    assert "Value error" not in message


def test_every_bad_variable_is_named_at_once(monkeypatch):
    monkeypatch.setenv("SCHEDULER_LEASE_TTL", "soon")
    monkeypatch.setenv("SCHEDULER_RETRY_INTERVAL", "later")
    with pytest.raises(SettingsError) as raised:
        load_settings()
    assert "SCHEDULER_LEASE_TTL: " in str(raised.value)
    assert "SCHEDULER_RETRY_INTERVAL: " in str(raised.value)


def test_settings_error_is_a_scheduler_error():
    assert issubclass(SettingsError, SchedulerError)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        pytest.param("SCHEDULER_LEASE_TTL", "never", id="bad-lease-ttl"),
        pytest.param("SCHEDULER_KEY_PREFIX", "plain", id="bad-key-prefix"),
        pytest.param("SCHEDULER_LOG_JSON", "perhaps", id="bad-boolean"),
    ],
)
def test_the_redis_password_never_appears_in_a_settings_error(monkeypatch, variable, value):
    monkeypatch.setenv("SCHEDULER_REDIS_URL", URL)
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as raised:
        load_settings()
    assert variable in str(raised.value)
    assert PASSWORD not in str(raised.value)
    assert PASSWORD not in repr(raised.value)


def test_an_unreadable_redis_url_is_refused_without_its_password(monkeypatch):
    monkeypatch.setenv("SCHEDULER_REDIS_URL", f"redis://admin:{PASSWORD}@[redis.internal:6380/0")
    with pytest.raises(SettingsError) as raised:
        load_settings()
    assert str(raised.value).startswith("SCHEDULER_REDIS_URL: is not a URL")
    assert PASSWORD not in str(raised.value)


@pytest.mark.parametrize("password", ["hunter2#s3cret", "hunter2?s3cret", "hunter2/s3cret", "a@b/hunter2-s3cret"])
def test_a_redis_url_whose_password_would_be_misread_is_refused_saying_how_to_write_it(monkeypatch, password):
    monkeypatch.setenv("SCHEDULER_REDIS_URL", f"redis://admin:{password}@redis.internal:6380/0")
    with pytest.raises(SettingsError) as raised:
        load_settings()
    assert str(raised.value) == ("SCHEDULER_REDIS_URL: cannot be read as written: a '/', '?', '#' or '@' in its "
                                 "user name or password must be percent-encoded (%2F, %3F, %23, %40)")


def test_a_redis_url_with_its_password_percent_encoded_or_in_the_query_is_taken(monkeypatch):
    for url in ("redis://admin:hunter2%23s3cret%2F@redis.internal:6380/0",
                "redis://redis.internal:6380/0?password=hunter2%23s3cret%2F"):
        monkeypatch.setenv("SCHEDULER_REDIS_URL", url)
        assert load_settings().redis_url.get_secret_value() == url


# -- values refused only by accident (or not at all) ------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        pytest.param("SCHEDULER_LEASE_TTL", "0", id="lease-ttl-zero"),
        pytest.param("SCHEDULER_LEASE_TTL", "-1", id="lease-ttl-negative"),
        pytest.param("SCHEDULER_RETRY_INTERVAL", "-0.5", id="retry-interval-negative"),
    ],
)
def test_zero_or_negative_plain_seconds_are_refused(monkeypatch, variable, value):
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError, match=f"^{variable}: "):
        load_settings()


@pytest.mark.parametrize(
    "value",
    [pytest.param("inf", id="infinity"), pytest.param("1e20", id="too-large")],
)
def test_an_overflowing_number_is_a_settings_error(monkeypatch, value):
    monkeypatch.setenv("SCHEDULER_LEASE_TTL", value)
    with pytest.raises(SettingsError, match="^SCHEDULER_LEASE_TTL: "):
        load_settings()


# -- SCHEDULER_REDIS_CA_FILE ------------------------------------------------------------------------

PEM = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----\n"
TLS_URL = f"rediss://scheduler:{PASSWORD}@redis.internal:6379/0"


def test_a_private_ca_file_is_read_with_a_rediss_url(monkeypatch, tmp_path):
    (tmp_path / "ca.pem").write_text(PEM)
    monkeypatch.setenv("SCHEDULER_REDIS_URL", TLS_URL)
    monkeypatch.setenv("SCHEDULER_REDIS_CA_FILE", str(tmp_path / "ca.pem"))
    assert load_settings().redis_ca_file == tmp_path / "ca.pem"


def test_an_empty_ca_file_variable_means_none(monkeypatch):
    monkeypatch.setenv("SCHEDULER_REDIS_CA_FILE", " ")
    assert load_settings().redis_ca_file is None


@pytest.mark.parametrize(("content", "reason"), [
    (None, "cannot read '{path}': No such file or directory"),
    ("not a certificate\n", "'{path}' holds no PEM certificate (-----BEGIN CERTIFICATE-----)"),
])
def test_a_ca_file_that_holds_no_certificate_is_refused_naming_the_variable(monkeypatch, tmp_path, content, reason):
    path = tmp_path / "ca.pem"
    if content is not None:
        path.write_text(content)
    monkeypatch.setenv("SCHEDULER_REDIS_URL", TLS_URL)
    monkeypatch.setenv("SCHEDULER_REDIS_CA_FILE", str(path))
    with pytest.raises(SettingsError) as failure:
        load_settings()
    assert str(failure.value) == "SCHEDULER_REDIS_CA_FILE: " + reason.format(path=path)
    assert PASSWORD not in str(failure.value)


@pytest.mark.parametrize("url", [None, URL, "unix:///run/redis.sock"])
def test_a_ca_file_without_a_rediss_url_is_refused_as_tls_would_not_be_used(monkeypatch, tmp_path, url):
    (tmp_path / "ca.pem").write_text(PEM)
    if url:
        monkeypatch.setenv("SCHEDULER_REDIS_URL", url)
    monkeypatch.setenv("SCHEDULER_REDIS_CA_FILE", str(tmp_path / "ca.pem"))
    with pytest.raises(SettingsError) as failure:
        load_settings()
    assert str(failure.value) == ("SCHEDULER_REDIS_CA_FILE is set, but SCHEDULER_REDIS_URL is not a rediss:// URL: "
                                  "the connection would not use TLS at all")
    assert PASSWORD not in str(failure.value)


# -- unknown_variables ----------------------------------------------------------------------------


def test_a_misspelt_setting_is_unknown_with_the_setting_it_meant():
    assert unknown_variables({"SCHEDULER_REDISURL": URL, "PATH": "/usr/bin"}) == [
        ("SCHEDULER_REDISURL", "SCHEDULER_REDIS_URL")
    ]


@pytest.mark.parametrize(
    ("name", "meant"),
    [
        pytest.param("SCHEDULER_LEASE_TLL", "SCHEDULER_LEASE_TTL", id="letters-swapped"),
        pytest.param("SCHEDULER_HTTPPORT", "SCHEDULER_HTTP_PORT", id="underscore-missing"),
        pytest.param("SCHEDULER_ELIGABLE", "SCHEDULER_ELIGIBLE", id="letter-wrong"),
        pytest.param("SCHEDULER_redis_urll", "SCHEDULER_REDIS_URL", id="lower-case-and-a-letter-too-many"),
        pytest.param("SCHEDULER_TOKEN", None, id="nothing-close"),
        pytest.param("SCHEDULER_", None, id="the-prefix-alone"),
    ],
)
def test_each_unknown_name_gets_the_closest_setting_or_none(name, meant):
    assert unknown_variables({name: "x"}) == [(name, meant)]


def test_every_unknown_name_is_listed_in_order():
    environ = {"SCHEDULER_RETRYINTERVAL": "1s", "SCHEDULER_LEASE_TTL": "5s", "SCHEDULER_KEYPREFIX": "{x}",
               "SCHEDULER_NOTHING_LIKE_IT": "1"}
    assert unknown_variables(environ) == [
        ("SCHEDULER_KEYPREFIX", "SCHEDULER_KEY_PREFIX"),
        ("SCHEDULER_NOTHING_LIKE_IT", None),
        ("SCHEDULER_RETRYINTERVAL", "SCHEDULER_RETRY_INTERVAL"),
    ]


def test_every_setting_is_known_so_the_list_cannot_fall_behind_the_model():
    environ = {f"SCHEDULER_{field.upper()}": "x" for field in Settings.model_fields}
    assert "SCHEDULER_HISTORY_LINES" in environ
    assert unknown_variables(environ) == []


def test_a_queues_redis_url_env_names_are_allowed_exactly_as_spelt():
    environ = {"SCHEDULER_SIDEKIQ_URL": URL, "SCHEDULER_Sidekiq_Url": URL, "SCHEDULER_SIDEKIQ_URI": URL}
    assert unknown_variables(environ, ["SCHEDULER_SIDEKIQ_URL", "SIDEKIQ_REDIS_URL"]) == [
        ("SCHEDULER_SIDEKIQ_URI", "SCHEDULER_SIDEKIQ_URL"),
        ("SCHEDULER_Sidekiq_Url", "SCHEDULER_SIDEKIQ_URL"),
    ]


def test_the_prefix_is_matched_as_spelt_and_a_setting_in_any_case_is_the_setting(monkeypatch):
    environ = {"scheduler_redisurl": "x", "Scheduler_LEASETTL": "x", "SCHEDULER_Log_Level": "debug"}
    assert unknown_variables(environ) == []
    monkeypatch.setenv("SCHEDULER_Log_Level", "debug")
    assert load_settings().log_level == "DEBUG", "pydantic-settings reads it: refusing it would be wrong"


def test_no_value_is_in_the_answer():
    found = unknown_variables({"SCHEDULER_REDISURL": URL, "SCHEDULER_PASSWORD": PASSWORD})
    assert [name for name, _ in found] == ["SCHEDULER_PASSWORD", "SCHEDULER_REDISURL"]
    assert PASSWORD not in repr(found)
