"""A URL as the scheduler shows it (its passwords masked, in the user info and in the query), and
the check that a URL's user info reads as written."""

from __future__ import annotations

import pytest

from scheduler.urls import holds_password, redact_url, url_problem

PASSWORD = "hunter2-s3cret"
URL = f"redis://admin:{PASSWORD}@redis.internal:6380/0"
MISREAD = ("cannot be read as written: a '/', '?', '#' or '@' in its user name or password must be "
           "percent-encoded (%2F, %3F, %23, %40)")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        pytest.param(URL, "redis://admin:***@redis.internal:6380/0", id="user-and-password"),
        pytest.param(f"redis://:{PASSWORD}@localhost", "redis://:***@localhost", id="password-only"),
        pytest.param(
            f"rediss://user:{PASSWORD}@cache.example.com:6379/1?ssl_cert_reqs=none",
            "rediss://user:***@cache.example.com:6379/1?ssl_cert_reqs=none",
            id="tls-with-query",
        ),
        pytest.param(
            f"unix://:{PASSWORD}@/var/run/redis.sock?db=2", "unix://:***@/var/run/redis.sock?db=2", id="unix-socket"
        ),
        pytest.param("redis://p%40ss:x%3Ay@host:6379", "redis://p%40ss:***@host:6379", id="percent-encoded"),
        pytest.param("redis://localhost:6379/0", "redis://localhost:6379/0", id="no-password-unchanged"),
        pytest.param("redis://user@localhost:6379/0", "redis://user@localhost:6379/0", id="user-only-unchanged"),
        pytest.param(f"redis://h:6379/0?password={PASSWORD}", "redis://h:6379/0?password=***", id="query"),
        pytest.param(f"redis://h/0?db=1&password={PASSWORD}&ssl_password={PASSWORD}&x=y",
                     "redis://h/0?db=1&password=***&ssl_password=***&x=y", id="query-among-others"),
        pytest.param(f"redis://h/0?pass%77ord={PASSWORD}", "redis://h/0?pass%77ord=***", id="query-name-encoded"),
        pytest.param(f"unix:///run/redis.sock?password={PASSWORD}", "unix:///run/redis.sock?password=***",
                     id="unix-query"),
        pytest.param(f"redis://u:{PASSWORD}@h/0?password={PASSWORD}", "redis://u:***@h/0?password=***", id="both"),
    ],
)
def test_redact_url(url, expected):
    redacted = redact_url(url)
    assert redacted == expected
    assert PASSWORD not in redacted


@pytest.mark.parametrize("password", [
    pytest.param("p@ss", id="at-sign"), pytest.param("pa:ss", id="colon"), pytest.param("x" * 100, id="long"),
    pytest.param("p%ss", id="percent"),
])
def test_redact_url_hides_awkward_passwords(password):
    assert password not in redact_url(f"redis://user:{password}@host:6379/0")
    assert password not in redact_url(f"redis://host:6379/0?password={password}")


def test_redact_url_keeps_an_ipv6_host_intact():
    assert redact_url(f"redis://:{PASSWORD}@[::1]:6379/0") == "redis://:***@[::1]:6379/0"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        pytest.param("redis://:pa#ss/w?rd@127.0.0.1:6379/0", "redis://***", id="hash-slash-question"),
        pytest.param("redis://:pass/word@127.0.0.1:6379/0", "redis://***", id="slash"),
        pytest.param("rediss://user:pass?word@h:6379/0", "rediss://***", id="question"),
        pytest.param("redis://us/er:password@h:6379/0", "redis://***", id="slash-in-the-user"),
        pytest.param("unix://:pass/word@/run/redis.sock", "unix://***", id="unix"),
        pytest.param("redis://h/0?password=pass#word", "redis://***", id="hash-in-the-query"),
        pytest.param("redis://h/0?password=pass@word", "redis://***", id="at-in-the-query"),
        pytest.param("password:word#x", "***", id="no-scheme-of-redis"),
        pytest.param("redis://:password[@h:6379/0", "***", id="unreadable"),
    ],
)
def test_a_url_whose_password_may_run_past_its_user_info_shows_nothing_of_it(url, expected):
    assert redact_url(url) == expected


@pytest.mark.parametrize("url", [
    "redis://:pa#ss/w?rd@127.0.0.1:6379/0",
    "redis://:pass/word@h:6379/0",
    "redis://:pass?word@h:6379/0",
    "redis://:pass#word@h:6379/0",
    "redis://us/er@h:6379/0",
    "redis://:a@b/c@h:6379/0",
    "redis://h:6379/0?password=pass#word",
    "redis://h:6379/0?password=pass@word",
    "unix://:pass/word@/run/redis.sock",
])
def test_a_url_whose_user_info_is_not_read_as_written_is_a_problem_quoting_none_of_it(url):
    assert url_problem(url) == MISREAD


@pytest.mark.parametrize("url", [
    "redis://:pa%23ss%2Fw%3Frd@127.0.0.1:6379/0",
    "redis://:p@ss@h:6379/0",
    "redis://:p%ss:w@h:6379/0",
    "redis://h:6379/0?password=pa%23ss%2Fw%3Frd%40",
    "rediss://user:pw@h:6379/0?ssl_cert_reqs=none",
    "unix:///run/redis.sock?db=1",
])
def test_a_url_read_as_written_is_no_problem(url):
    assert url_problem(url) is None


def test_a_url_urllib_cannot_split_is_a_problem_quoting_none_of_it():
    assert url_problem(f"redis://:{PASSWORD}[@h:6379/0") == (
        "is not a URL urllib can split: a '[' or ']' not around an IPv6 address must be written %5B or %5D")


@pytest.mark.parametrize(("url", "holds"), [
    ("redis://:pw@h/0", True),
    ("redis://u:@h/0", True),
    ("redis://h/0?password=pw", True),
    ("redis://h/0?db=1&pass%77ord=pw", True),
    ("redis://h/0?ssl_password=pw", True),
    ("redis://u@h/0?db=1", False),
    ("redis://h/0?passwords=x", False),
])
def test_holds_password_looks_in_the_user_info_and_the_query(url, holds):
    assert holds_password(url) is holds
