"""How redis-py's errors and URLs are read, without a server: ACL refusals (named, even inside a
script), TLS failures, where a client connects, and the TLS options a rediss:// URL gets."""

from __future__ import annotations

import ssl

import pytest
import redis
from loguru import logger
from redis_server import free_port

from scheduler.errors import RedisPermissionError, RedisRefused, RedisUnavailable
from scheduler.settings import Settings
from scheduler.store.connection import (
    CONNECTION_OPTIONS,
    connect,
    location,
    redis_errors,
    refusal,
    reply_error,
    tls_failure,
    tls_options,
)

SCRIPT = "local a = 1\nredis.call('SET', KEYS[1], a)\nreturn redis.call( 'XADD', KEYS[2], '*', 'f', 'v')\n"
SHA = "ab" * 20
KNOWN = {SHA: SCRIPT}  # the scripts a Scripts set knows: SHA1 -> text


def script_refusal(sha: str, line: int, what: str = "run this command or subcommand") -> redis.ResponseError:
    return redis.ResponseError(f"The user executing the script can't {what} script: {sha}, on @user_script:{line}.")


def test_noperm_outside_a_script_is_redis_own_words():
    error = redis.exceptions.NoPermissionError("this user has no permissions to run the 'info' command")
    assert refusal(error) == "NOPERM this user has no permissions to run the 'info' command"


def test_a_command_refused_inside_a_known_script_is_named_from_its_line():
    assert refusal(script_refusal(SHA, 3), KNOWN) == (
        "NOPERM the script's XADD (line 3) was refused: the user can't run this command or subcommand")
    keys = "access at least one of the keys mentioned in the command arguments"
    assert refusal(script_refusal(SHA, 2, keys), KNOWN) == (
        f"NOPERM the script's SET (line 2) was refused: the user can't {keys}")


def test_a_refusal_in_an_unknown_script_or_line_still_says_what_was_refused():
    assert refusal(script_refusal("cd" * 20, 7)) == (
        "NOPERM a command of script cdcdcdcdcdcd (line 7) was refused: the user can't run this command or subcommand")
    assert "a command of script" in refusal(script_refusal(SHA, 99), KNOWN)
    assert refusal(redis.ResponseError("The user executing the script can't publish to the channel")) == (
        "NOPERM a command inside a script was refused: the user can't publish to the channel")


@pytest.mark.parametrize("text", ["WRONGTYPE Operation against a key holding the wrong kind of value",
                                  "OOM command not allowed when used memory > 'maxmemory'.", "Error running script"])
def test_other_error_replies_are_not_refusals(text):
    error = redis.ResponseError(text)
    assert refusal(error) is None
    translated = reply_error(error, "enqueueing firings")
    assert type(translated) is RedisRefused and isinstance(translated, RedisUnavailable)
    assert str(translated) == f"enqueueing firings: {text}" and translated.reply == text


def test_a_refusal_becomes_a_permission_error_that_flows_as_redis_trouble():
    with pytest.raises(RedisPermissionError) as raised:
        with redis_errors("taking the lease"):
            raise redis.exceptions.NoPermissionError("this user has no permissions to run the 'evalsha' command")
    error = raised.value
    assert isinstance(error, RedisUnavailable)
    assert (error.doing, error.refusal) == ("taking the lease", "NOPERM this user has no permissions to run the "
                                            "'evalsha' command")
    assert str(error).endswith("the scheduler's Redis user needs the ACL printed by `scheduler acl`")


def connection_error_from(cause: BaseException) -> redis.ConnectionError:
    try:
        try:
            raise cause
        except OSError as error:
            raise redis.ConnectionError(f"Error 1 connecting to 127.0.0.1:6380. {error}.") from None
    except redis.ConnectionError as error:
        error.__context__ = cause
        return error


def test_tls_failures_are_read_from_the_ssl_error_redis_py_keeps():
    verify = ssl.SSLCertVerificationError(1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed")
    verify.verify_message = "self-signed certificate in certificate chain"
    assert tls_failure(connection_error_from(verify)) == (
        "certificate verify failed: self-signed certificate in certificate chain")
    wrong = ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number")
    wrong.reason = "WRONG_VERSION_NUMBER"
    assert tls_failure(connection_error_from(wrong)) == "wrong version number"
    assert tls_failure(redis.ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")) is None


def test_a_tls_failure_without_its_ssl_error_is_read_from_the_message():
    error = redis.ConnectionError("Error 1 connecting to h:6380. [SSL: CERTIFICATE_VERIFY_FAILED] certificate "
                                  "verify failed: unable to get local issuer certificate (_ssl.c:1006).")
    assert tls_failure(error) == "certificate verify failed: unable to get local issuer certificate"


def test_redis_errors_names_where_a_tls_handshake_failed_and_keeps_other_failures_short():
    verify = ssl.SSLCertVerificationError(1, "certificate verify failed")
    verify.verify_message = "certificate has expired"
    with pytest.raises(RedisUnavailable, match="^reading Redis's clock: TLS handshake with rediss://u:\\*\\*\\*@h:1/0 "
                                               "failed: certificate verify failed: certificate has expired$"):
        with redis_errors("reading Redis's clock", "rediss://u:***@h:1/0"):
            raise connection_error_from(verify)
    with pytest.raises(RedisUnavailable, match="^reading Redis's clock: ConnectionError$"):
        with redis_errors("reading Redis's clock", "rediss://u:***@h:1/0"):
            raise redis.ConnectionError("Error 111 connecting to h:1. Connection refused.")


@pytest.mark.parametrize("url, expected", [
    ("rediss://sched:secret@redis.internal:6380/2", "rediss://sched:***@redis.internal:6380/2"),
    ("redis://:secret@10.0.0.1:6379/0", "redis://:***@10.0.0.1:6379/0"),
    ("redis://sched@[::1]:6379", "redis://sched@[::1]:6379/0"),
    ("unix:///run/redis.sock?db=1", "unix:///run/redis.sock"),
    ("redis://10.0.0.1:6379/0?password=secret", "redis://:***@10.0.0.1:6379/0"),
    ("unix:///run/redis.sock?password=secret", "unix://:***@/run/redis.sock"),
    ("redis://sc%2Fhed:se%2Fcret@h:1/0", "redis://sc%2Fhed:***@h:1/0"),
])
def test_location_is_the_url_without_its_password(url, expected):
    client = redis.Redis.from_url(url)
    assert location(client) == expected
    assert "secret" not in location(client)


@pytest.mark.parametrize("url, shown", [
    ("redis://127.0.0.1:{port}/0?password=secret", "redis://127.0.0.1:{port}/0?password=***"),
    ("redis://:se%23cret@127.0.0.1:{port}/0", "redis://:***@127.0.0.1:{port}/0"),
])
def test_a_redis_nothing_answers_at_is_named_without_the_password(url, shown):
    port = free_port()  # nothing listens there
    with pytest.raises(RedisUnavailable) as raised:
        connect(Settings(), url.format(port=port))
    assert str(raised.value).startswith(f"cannot reach Redis at {shown.format(port=port)}: ConnectionError")
    assert "secret" not in str(raised.value)


def test_rediss_options_check_the_certificate_and_host_and_add_the_ca_file(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    url = "rediss://u:pw@redis.internal:6380/0"
    assert tls_options(Settings(), url) == {"ssl_cert_reqs": "required", "ssl_check_hostname": True}
    assert tls_options(Settings(redis_url=url, redis_ca_file=ca), url)["ssl_ca_certs"] == str(ca)


@pytest.mark.parametrize("query, warning", [
    ("ssl_cert_reqs=none", "TLS certificate verification is OFF for rediss://u:***@redis.internal:6380/0"),
    ("ssl_cert_reqs=CERT_NONE", "TLS certificate verification is OFF"),
    ("ssl_check_hostname=false", "TLS host name checking is OFF for rediss://u:***@redis.internal:6380/0"),
    ("ssl_check_hostname=0", "TLS host name checking is OFF"),
])
def test_a_url_that_turns_a_check_off_is_warned_about_without_the_password(query, warning):
    said: list[str] = []
    sink = logger.add(lambda message: said.append(str(message)), level="WARNING", format="{message}")
    try:
        tls_options(Settings(), f"rediss://u:pw@redis.internal:6380/0?{query}")
    finally:
        logger.remove(sink)
    assert len(said) == 1 and warning in said[0] and ":pw@" not in said[0]


def test_with_verification_off_host_name_checking_is_not_asked_for_either():
    options = tls_options(Settings(), "rediss://h:6380/0?ssl_cert_reqs=none")
    assert "ssl_check_hostname" not in options, "Python refuses to check host names without verifying"


def test_no_warning_while_both_checks_stay_on():
    said: list[str] = []
    sink = logger.add(lambda message: said.append(str(message)), level="WARNING", format="{message}")
    try:
        tls_options(Settings(), "rediss://h:6380/0?ssl_cert_reqs=required&ssl_check_hostname=true")
    finally:
        logger.remove(sink)
    assert said == []


def test_redis_py_is_told_not_to_send_client_setinfo():
    assert CONNECTION_OPTIONS in ({"driver_info": None}, {"lib_name": None, "lib_version": None})
    connection = redis.Redis.from_url("redis://h:1/0", **CONNECTION_OPTIONS).connection_pool.make_connection()
    assert getattr(connection, "driver_info", None) is None and getattr(connection, "lib_name", None) is None
