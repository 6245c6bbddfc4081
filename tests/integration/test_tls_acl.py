"""Redis as ElastiCache serves it, against real redis-servers: TLS with the certificate and host name
checked (a private CA given by SCHEDULER_REDIS_CA_FILE), and a user holding only the ACL that
`scheduler acl` prints. Every Store call, as that user, leaves Redis's ACL LOG empty; a missing
permission surfaces as RedisPermissionError saying what Redis refused."""

from __future__ import annotations

import shutil
import subprocess
import threading
from dataclasses import replace
from datetime import timedelta

import pytest
import redis
from helpers import queue_entries, redis_now, write_table
from support import PREFIX, WATERMARK_TTL, accept, floor_minute, plan_at, route, take_lease

from redis_server import RedisServer, wait_for
from scheduler.acl import Acl, commands, queue_keys, render
from scheduler.cli.main import main
from scheduler.errors import RedisPermissionError, RedisUnavailable
from scheduler.replica.runner import Replica
from scheduler.settings import Settings
from scheduler.store.connection import connect, location
from scheduler.store.control import Control
from scheduler.keys import Keys
from scheduler.store.state import Store
from scheduler.table import load_table
from scheduler.replica.senders import RedisSender
from scheduler.tenants import scan_redis_set
from tls_certs import CertificateAuthority

USER, PASSWORD = "scheduler", "Acl-pw-Hq83-never-print-me"
TABLE = f"""
[tenants]
active = {{ redis_set = "tenants:active" }}

{queue_entries("reports", "billing")}
[queues.elsewhere]
type = "sidekiq"
redis_url = "redis://127.0.0.1:1/0"

[[schedule]]
name = "s"
every = "1m"
tenants = "active"
job = "ReportJob"
""" + "".join(f'\n[[schedule]]\nname = "s-{queue}"\nevery = "1m"\njob = "J"\nqueue = "{queue}"\n'
              for queue in ("reports", "billing", "elsewhere"))


@pytest.fixture
def ca(tmp_path) -> CertificateAuthority:
    return CertificateAuthority(tmp_path / "tls")


@pytest.fixture
def tls_server(tmp_path, ca):
    server = RedisServer(tmp_path / "redis-tls", tls=ca.server("redis")).start()
    yield server
    server.cleanup()


def user_acl(config, flat: bool = False) -> Acl:
    return render(PREFIX, ["tenants:*"], queue_keys(load_table(config), PREFIX), flat=flat)


def refusals(server: RedisServer) -> list[tuple[str, str, str]]:
    return [(entry["reason"], entry["context"], entry["object"]) for entry in server.acl_log()]


# -- TLS ------------------------------------------------------------------------------------------


def test_rediss_with_the_private_ca_verifies_and_connects(tls_server, ca):
    client = connect(Settings(redis_url=tls_server.url, redis_ca_file=ca.path))
    assert client.ping()
    assert location(client) == f"rediss://127.0.0.1:{tls_server.port}/0"
    client.close()


def test_rediss_without_the_ca_is_refused_naming_the_redacted_url_and_why(tls_server):
    url = tls_server.url_for(USER, PASSWORD)
    with pytest.raises(RedisUnavailable) as failure:
        connect(Settings(), url)
    message = str(failure.value)
    assert message.startswith(f"cannot reach Redis at rediss://{USER}:***@127.0.0.1:{tls_server.port}/0: "
                              "TLS handshake failed: certificate verify failed: self")
    assert "certificate chain" in message and PASSWORD not in message and "\n" not in message


@pytest.mark.parametrize("host, mismatch", [("127.0.0.1", "IP address"), ("localhost", "Hostname")])
def test_a_certificate_for_another_host_is_refused(tmp_path, ca, host, mismatch):
    server = RedisServer(tmp_path / "redis-wrong", tls=ca.server("wrong", ("redis.example.com",))).start()
    try:
        with pytest.raises(RedisUnavailable) as failure:
            connect(Settings(redis_url=server.url_for(host=host), redis_ca_file=ca.path))
    finally:
        server.cleanup()
    assert str(failure.value) == (f"cannot reach Redis at rediss://{host}:{server.port}/0: TLS handshake failed: "
                                  f"certificate verify failed: {mismatch} mismatch, certificate is not valid for "
                                  f"'{host}'")


def test_a_store_on_an_unverified_tls_connection_names_the_url_and_why(tls_server):
    store = Store(connect(Settings(), tls_server.url_for(USER, PASSWORD), check=False), Keys(PREFIX))
    with pytest.raises(RedisUnavailable) as failure:
        store.acquire("r1", timedelta(seconds=5))
    assert str(failure.value).startswith(f"taking the lease: TLS handshake with rediss://{USER}:***@127.0.0.1:"
                                         f"{tls_server.port}/0 failed: certificate verify failed: self")
    assert PASSWORD not in str(failure.value)


def test_the_ca_may_come_in_the_urls_query_instead(tls_server, ca):
    client = connect(Settings(), f"{tls_server.url}?ssl_ca_certs={ca.path}")
    assert client.ping()
    client.close()


def test_a_url_that_turns_verification_off_is_obeyed_but_warned_about(tls_server, warnings):
    client = connect(Settings(), f"{tls_server.url_for(USER, PASSWORD).replace(USER, 'default')}?ssl_cert_reqs=none")
    assert warnings and "TLS certificate verification is OFF for rediss://default:***@127.0.0.1" in warnings[0]
    assert PASSWORD not in warnings[0]
    client.close()


def test_a_url_that_turns_host_name_checking_off_is_warned_about(tmp_path, ca, warnings):
    server = RedisServer(tmp_path / "redis-wrong", tls=ca.server("wrong", ("redis.example.com",))).start()
    try:
        client = connect(Settings(redis_url=f"{server.url}?ssl_check_hostname=false", redis_ca_file=ca.path))
        client.close()
    finally:
        server.cleanup()
    assert any("TLS host name checking is OFF" in line for line in warnings)


def test_validate_over_tls_without_the_ca_says_why_in_one_line(tls_server, tmp_path, monkeypatch, capsys):
    config = write_table(tmp_path, TABLE)
    monkeypatch.setenv("SCHEDULER_REDIS_URL", tls_server.url_for(USER, PASSWORD))
    assert main(["validate", "--config", str(config)]) == 3
    err = capsys.readouterr().err
    assert err.startswith(f"scheduler validate: cannot reach Redis at rediss://{USER}:***@127.0.0.1:"
                          f"{tls_server.port}/0: TLS handshake failed: certificate verify failed")
    assert err.count("\n") == 1 and PASSWORD not in err


# -- the ACL ----------------------------------------------------------------------------------------


def test_redis_cli_accepts_the_printed_line(redis_server, tmp_path, capsys):
    config = write_table(tmp_path, TABLE)
    assert main(["acl", "--prefix", PREFIX, "--tenant-keys", "tenants:*", "--queue-keys", "--config", str(config),
                 "--format", "setuser"]) == 0
    line = capsys.readouterr().out.replace("<password>", PASSWORD)
    cli = shutil.which("redis-cli", path="/usr/bin:/bin") or "redis-cli"
    done = subprocess.run([cli, "-p", str(redis_server.port)], input=line, capture_output=True, text=True, timeout=10)
    assert done.stdout.strip() == "OK", done.stdout + done.stderr
    client = redis_server.client()
    described = client.acl_getuser(USER)
    assert described["selectors"] and len(described["selectors"]) == 2
    assert redis.Redis(port=redis_server.port, username=USER, password=PASSWORD).ping()
    client.close()


def test_of_admin_and_dangerous_commands_the_line_grants_info_alone(redis_client):
    forbidden = {name.decode() if isinstance(name, bytes) else name
                 for category in ("admin", "dangerous") for name in redis_client.acl_cat(category)}
    assert set(commands()) & forbidden == {"info"}


@pytest.fixture(params=["selectors", "flat"])
def user_store(redis_server, tmp_path, request):
    """A Store connected as the scheduler's user, holding the line `scheduler acl` prints for TABLE
    (with its selectors, or --flat)."""
    config = write_table(tmp_path, TABLE)
    redis_server.add_user(USER, PASSWORD, user_acl(config, flat=request.param == "flat").rules())
    store = Store(connect(Settings(), redis_server.url_for(USER, PASSWORD)), Keys(PREFIX))
    yield store, load_table(config)
    store.client.close()


def test_every_store_call_as_the_scheduler_user_leaves_the_acl_log_empty(redis_server, redis_client, user_store,
                                                                          tmp_path):
    store, table = user_store
    redis_client.sadd("tenants:active", "acme", "globex")
    released = threading.Event()
    pubsub = store.client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(**{store.keys.released: lambda message: released.set()})
    listener = pubsub.run_in_thread(sleep_time=0.05, daemon=True)

    assert store.eviction() == ("noeviction", 0)
    token = take_lease(store, "r1")
    assert store.renew(token, timedelta(seconds=30)) and store.holder() == token
    store.load_scripts()
    store.publish_table(token, "fingerprint", "schedules.toml", store.time())
    tenants = [batch for batch in scan_redis_set(store.client, "tenants:active")]
    assert sorted(tenants[0]) == ["acme", "globex"]
    now = redis_now(redis_client)
    tick = floor_minute(now)
    soon = now + timedelta(milliseconds=300)
    for queue in ("default", "reports", "billing", "elsewhere"):
        schedule = replace(table.schedules[0], queue=queue)  # as the table's s-<queue> would, over the set
        plan = plan_at(schedule, tick, ["acme", "globex"], [tick, soon])  # one due now, one waiting out its jitter
        accept(store, token, schedule, f"s-{queue}", [plan], tick, WATERMARK_TTL, table)
    assert store.watermarks([f"s-{queue}" for queue in ("default", "reports")]) == [tick, tick]
    assert store.queues() == {"default", "reports", "billing", "elsewhere"}
    wait_for(lambda: redis_now(redis_client) > soon, message="the waiting firings to be due")
    assert all(store.dispatch(token, route(store, queue, table))[0] == 1
               for queue in ("default", "reports", "billing", "elsewhere"))
    assert redis_client.xlen(f"{PREFIX}:queue:default") == 2
    assert redis_client.llen("queue:reports") == 2 and redis_client.llen("billing-tasks") == 2

    assert store.outbox_queues() == {"elsewhere"}
    assert store.outbox_backlog("elsewhere")[0] == 2
    entries = store.read_outboxes({"elsewhere": "0-0"}, 10, timedelta(milliseconds=10))["elsewhere"]
    target = RedisServer(tmp_path / "target-redis").start()  # Sidekiq's own Redis, same user there
    try:
        target.add_user(USER, PASSWORD, user_acl(tmp_path / "schedules.toml").rules())
        spec = replace(table.queue("elsewhere"), redis_url=target.url_for(USER, PASSWORD))
        sender = RedisSender(spec, "elsewhere", store.keys, Settings())
        assert sender.send([fields for _, fields in entries], lambda: True) == [True, True]
        sender.close()
        assert target.client().llen("queue:elsewhere") == 2
        assert refusals(target) == []
    finally:
        target.cleanup()
    store.remove_from_outbox("elsewhere", [entry for entry, _ in entries])
    assert store.release(token)
    wait_for(released.is_set, message="the release to reach the subscriber")
    listener.stop()
    listener.join(2)
    assert refusals(redis_server) == []


def test_asking_for_a_request_twice_and_answering_it_as_the_scheduler_user_leaves_the_acl_log_empty(
        redis_server, user_store):
    store, _ = user_store
    control = Control(store)
    request, added = control.request("trigger", schedule="s", tenant="acme")
    assert added and control.request("trigger", schedule="s", tenant="acme") == (request, False)
    token = take_lease(store, "r1")
    store.complete(token, request, {"kind": "trigger", "schedule": "s", "tenant": "acme"}, {"status": "done"}, None,
                   [], timedelta(minutes=1))
    assert control.result(request, timeout=0) == {"status": "done"}
    assert control.request("trigger", schedule="s", tenant="acme")[1], "answered: asking again is a new request"
    assert refusals(redis_server) == []


# -- a missing permission ------------------------------------------------------------------------


def limited_store(server: RedisServer, config, *removed: str) -> Store:
    """A Store as the scheduler's user with the line for ``config`` and then ``removed`` rules."""
    server.add_user(USER, PASSWORD, [*user_acl(config).rules(), *removed])
    return Store(connect(Settings(), server.url_for(USER, PASSWORD), check=False), Keys(PREFIX))


def test_a_refused_command_says_what_redis_refused_and_points_at_scheduler_acl(redis_server, tmp_path):
    store = limited_store(redis_server, write_table(tmp_path, TABLE), "-info")
    with pytest.raises(RedisPermissionError) as failure:
        store.eviction()
    assert str(failure.value) == (
        "Redis refused a command for lack of permission while reading Redis's memory settings (NOPERM this user "
        "has no permissions to run the 'info' command): the scheduler's Redis user needs the ACL printed by "
        "`scheduler acl`")
    assert isinstance(failure.value, RedisUnavailable), "it flows where Redis trouble flows"
    assert failure.value.__cause__ is None and failure.value.__suppress_context__


def test_a_command_refused_inside_a_script_is_named_from_the_scripts_own_text(redis_server, tmp_path):
    store = limited_store(redis_server, write_table(tmp_path, TABLE), "-xadd")
    token = take_lease(store, "r1")
    table = load_table(tmp_path / "schedules.toml")
    schedule = table.schedules[0]
    tick = floor_minute(redis_now(store.client))
    with pytest.raises(RedisPermissionError) as failure:
        accept(store, token, schedule, "s", [plan_at(schedule, tick, ["acme"], [tick])], tick, WATERMARK_TTL, table)
    refusal = failure.value.refusal
    assert refusal.startswith("NOPERM the script's XADD (line ")
    assert refusal.endswith("was refused: the user can't run this command or subcommand")
    assert failure.value.doing == "enqueueing firings"


def test_a_queue_key_outside_the_acl_is_refused_at_the_script_call(redis_server, tmp_path):
    config = write_table(tmp_path, TABLE)
    redis_server.add_user(USER, PASSWORD, render(PREFIX, ["tenants:*"]).rules())  # no --queue-keys
    store = Store(connect(Settings(), redis_server.url_for(USER, PASSWORD)), Keys(PREFIX))
    token = take_lease(store, "r1")
    table = load_table(config)
    schedule = replace(table.schedules[0], queue="reports")
    tick = floor_minute(redis_now(store.client))
    with pytest.raises(RedisPermissionError, match="NOPERM this user has no permissions to access one of the keys"):
        accept(store, token, schedule, "s", [plan_at(schedule, tick, ["acme"], [tick])], tick, WATERMARK_TTL, table)
    assert redis_server.client().llen("queue:reports") == 0


def test_a_tenant_set_outside_the_acl_is_refused_when_read(redis_server, redis_client, tmp_path):
    store = limited_store(redis_server, write_table(tmp_path, TABLE))
    redis_client.sadd("customers", "acme")
    with pytest.raises(RedisPermissionError, match="while reading tenant set 'customers'"):
        list(scan_redis_set(store.client, "customers"))


def test_connect_as_a_user_that_may_not_ping_says_so(redis_server, tmp_path):
    redis_server.add_user(USER, PASSWORD, ["-@all", "+time"])
    with pytest.raises(RedisPermissionError) as failure:
        connect(Settings(), redis_server.url_for(USER, PASSWORD))
    assert f"while checking the connection to redis://{USER}:***@127.0.0.1" in str(failure.value)
    assert "'ping' command" in str(failure.value) and PASSWORD not in str(failure.value)


def test_a_user_without_the_release_channel_is_told_once_and_still_leads(redis_server, tmp_path, warnings):
    config = write_table(tmp_path, TABLE)
    store = limited_store(redis_server, config, "resetchannels")
    fast = dict(lease_ttl=timedelta(seconds=2), retry_interval=timedelta(milliseconds=200))
    replica = Replica(Settings(**fast), config, store, "r1")
    replica.start()
    try:
        wait_for(lambda: replica.lease.held, message="r1 to lead: standbys only lose the early wake-up")
        wait_for(lambda: any("listening for lease releases" in line for line in warnings), message="the refusal")
    finally:
        replica.stop()
    [line] = [line for line in warnings if "while listening for lease releases" in line]
    assert "(NOPERM this user has no permissions to access one of the channels used as arguments)" in line
    [release] = [line for line in warnings if "could not release the lease" in line]
    assert "NOPERM the script's PUBLISH (line " in release, "the release script's PUBLISH is named"
    store.client.close()
