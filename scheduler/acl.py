"""The Redis ACL of the scheduler's user, in one place: `scheduler acl`, docs/redis.md and the tests
all render it from here.

What it grants, and why (docs/redis.md has the long form):

* every command below on the keys under the prefix (``~{scheduler}:*``) and on its pub/sub
  channels (``&{scheduler}:*``: the lease release the standbys listen for);
* the commands the replica sends itself and those its Lua scripts call (Redis 7 checks both), plus
  the common string, hash, set, sorted-set and stream commands on the scheduler's own keys, so an
  operator command or a metric that uses one more of them needs no new ACL;
* keyless commands: PING and SELECT (a URL's database number), CLIENT SETNAME (sent on connect when
  the URL names the client; the scheduler turns redis-py's CLIENT SETINFO off), TIME (the scheduler's clock), INFO (the eviction-policy check
  before leading: the one command of @dangerous granted, and it is read-only), EVALSHA and SCRIPT
  LOAD (redis-py's scripts: EVALSHA, then SCRIPT LOAD on NOSCRIPT);
* a selector per extra key pattern, so the keys outside the prefix get only the commands they need:
  tenant sets read-only with SSCAN; the Sidekiq and Celery keys a fenced script writes with LPUSH
  and SADD, in the same selector as the prefix (an EVALSHA's keys must all pass in one selector,
  and Redis wants read and write on every key a script is given).

Nothing of @admin, and of @dangerous only INFO: no KEYS, SCAN, FLUSHALL, CONFIG, DEBUG, MONITOR,
ACL, SHUTDOWN.

``flat`` folds the selectors into the root rules, for an engine that refuses selectors: the tenant
sets and queue keys then get every command of the root (reads only, on the tenant sets), and the
root gets LPUSH. Looser, so only a fallback.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from scheduler.keys import Keys
from scheduler.table import QueueType, Table, resolve_queue
from scheduler.targets import local_write

DEFAULT_USER = "scheduler"
PASSWORD_PLACEHOLDER = "<password>"

#: Granted on the scheduler's own keys (and keyless), grouped by what uses them.
COMMANDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("connection", ("ping", "select", "client|setname")),
    ("server", ("time", "info")),
    ("scripts", ("evalsha", "script|load")),
    ("pub/sub", ("subscribe", "publish")),
    ("strings", ("get", "mget", "set", "incr", "incrby", "del", "exists", "pexpire", "pttl")),
    ("hashes", ("hget", "hmget", "hgetall", "hlen", "hset", "hsetnx", "hdel", "hincrby")),
    ("sets", ("sadd", "srem", "smembers", "sismember", "smismember", "scard", "sscan")),
    ("sorted sets", ("zadd", "zrem", "zscore", "zcard", "zcount", "zrange", "zrangebyscore", "zremrangebyscore")),
    ("streams", ("xadd", "xrange", "xrevrange", "xread", "xlen", "xdel", "xtrim")),
)
#: On a tenant set (its key comes from schedules.toml): read it, nothing else. SSCAN as the leader,
#: validate and dry-run read it; SISMEMBER and SCARD as trigger --tenant and backfill ask about it.
TENANT_COMMANDS = ("sscan", "sismember", "scard")
#: On a Sidekiq or Celery key a script writes: the script call and the writes deliver.lua makes.
QUEUE_COMMANDS = ("evalsha", "lpush", "sadd")

_GLOB = "*?[]\\"


def glob_escape(text: str) -> str:
    """``text`` as a Redis glob pattern that matches only itself."""
    return "".join("\\" + char if char in _GLOB else char for char in text)


def commands() -> list[str]:
    return [command for _, group in COMMANDS for command in group]


@dataclass(frozen=True)
class Acl:
    """The rules for a key prefix, the operator's tenant-set patterns, and the exact queue keys
    (outside the prefix) that the table's Sidekiq and Celery queues write."""

    prefix: str = "{scheduler}"
    tenant_keys: tuple[str, ...] = ()
    queue_keys: tuple[str, ...] = ()
    flat: bool = False

    @property
    def own_keys(self) -> str:
        return f"{glob_escape(self.prefix)}:*"

    def rules(self) -> list[str]:
        """The rule tokens after the user's name and password, selectors last."""
        tokens = [f"~{self.own_keys}", f"&{self.own_keys}", "-@all", *(f"+{command}" for command in commands())]
        if self.flat:
            tokens[1:1] = [f"%R~{pattern}" for pattern in self.tenant_keys]
            tokens[1:1] = [f"~{glob_escape(key)}" for key in self.queue_keys]
            return tokens + [f"+{command}" for command in QUEUE_COMMANDS if self.queue_keys and command not in commands()]
        if self.tenant_keys:
            tokens.append(_selector(TENANT_COMMANDS, (f"%R~{pattern}" for pattern in self.tenant_keys)))
        if self.queue_keys:
            patterns = [f"~{self.own_keys}", *(f"~{glob_escape(key)}" for key in self.queue_keys)]
            tokens.append(_selector(QUEUE_COMMANDS, patterns))
        return tokens

    def setuser(self, user: str = DEFAULT_USER, password: str = PASSWORD_PLACEHOLDER) -> list[str]:
        """ACL SETUSER's arguments: ``reset`` first, so running it again leaves exactly these rules."""
        return ["ACL", "SETUSER", user, "reset", "on", f">{password}", *self.rules()]

    def setuser_line(self, user: str = DEFAULT_USER, password: str = PASSWORD_PLACEHOLDER) -> str:
        """The ACL SETUSER command as redis-cli reads it (a selector quoted: it holds spaces)."""
        return " ".join(_quoted(token) for token in self.setuser(user, password))

    def access_string(self) -> str:
        """ElastiCache's form: the same rules, without the user, the password (set on the user
        itself) and ``reset`` (refused there)."""
        return " ".join(["on", *self.rules()])


def queue_keys(table: Table, prefix: str) -> list[str]:
    """The keys outside ``prefix`` that the table's queues write (Sidekiq's ``queues`` set and
    ``queue:NAME`` lists, Celery's list, a stream named outside the prefix), in order, once each.
    A Sidekiq or Celery queue in a Redis of its own is listed too: the same user serves there."""
    keys = Keys(prefix)
    found: list[str] = []
    for schedule in table.schedules:
        spec = resolve_queue(table.queues, schedule.queue)
        if spec.type is QueueType.SQS:
            continue
        _, written, _ = local_write(spec, schedule.queue, keys)
        for key in written:
            if not key.startswith(f"{prefix}:") and key not in found:
                found.append(key)
    return found


def _selector(commands: Iterable[str], patterns: Iterable[str]) -> str:
    return "(" + " ".join([*(f"+{command}" for command in commands), *patterns]) + ")"


def _quoted(token: str) -> str:
    if not any(char in token for char in ' "\'\\\t\n'):
        return token
    return '"' + token.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render(prefix: str = "{scheduler}", tenant_keys: Sequence[str] = (), queue_keys: Sequence[str] = (),
           flat: bool = False) -> Acl:
    return Acl(prefix, tuple(tenant_keys), tuple(queue_keys), flat)
