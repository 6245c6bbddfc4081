"""Every error the scheduler raises on purpose, and the exit code each means for the CLI. Each class
with its module (under scheduler/), what it means, and its exit code where it reaches the CLI:

    SchedulerError               errors             the root: exit 1 (REFUSED) unless a class says otherwise
     ├── TableError              errors             schedules.toml is unreadable or invalid (carries every
     │                                              Problem): exit 1
     ├── SettingsError           errors             a SCHEDULER_* variable (no setting, or a bad value) or the
     │                                              embedded-Redis mode is refused: exit 1; also a queue's
     │                                              redis_url_env variable unset or its URL refused (raised
     │                                              in the relay, retried)
     ├── UsageError              errors             an argument's value is refused (an unknown schedule,
     │                                              --count 0): exit 1, not argparse's 2
     ├── RedisUnavailable        errors             Redis could not be reached (wraps redis-py's connection
     │    │                                         errors): exit 3 (UNAVAILABLE); a running replica retries
     │    └── RedisRefused       errors             Redis answered with an error reply (OOM, READONLY,
     │         │                                    WRONGTYPE, a script's error): exit 3; a running
     │         │                                    replica reports it for the one schedule it concerns
     │         └── RedisPermissionError  errors     Redis refused a command: the user's ACL lacks a
     │                                              permission: exit 3; a replica logs it once
     ├── NotLeader               errors             a fenced write was refused: this replica no longer holds
     │                                              the lease (never reaches the CLI: the replica stands by)
     ├── EndpointsUnavailable    replica.endpoints  /metrics, /healthz and /readyz cannot listen where the
     │                                              settings say (a port in use): `scheduler run` exits 1
     ├── ProtectionRefused       replica.protection the ECS agent did not answer, or did not (un)protect the
     │                                              task (logged and retried, never reaches the CLI)
     ├── RelayRefused            replica.relay      a queue's firings cannot go on now; they stay in the
     │                                              outbox (logged and retried, never reaches the CLI)
     └── SenderError             replica.senders    a target refused a whole batch, or could not be reached;
                                                    the relay retries (never reaches the CLI)

Library errors are translated where they enter (``raise RedisUnavailable(...) from None``), so the
CLI and the run loop only ever handle this tree. The CLI prints ``scheduler COMMAND: message`` and
returns the error's ``exit_code``, one of ExitCode.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class ExitCode(IntEnum):
    """What every command returns (README, "Using it")."""

    OK = 0
    REFUSED = 1  # the table, a setting, an argument's value, or the leader refused the request; health: unhealthy
    USAGE = 2  # argparse's own code for a malformed command line
    UNAVAILABLE = 3  # Redis could not be reached, or no replica holds the lease: the request stays queued
    CRASHED = 4  # the replica's work loop died of a bug (the log has the traceback)
    BUSY = 5  # a leader holds the lease but has not answered the request yet: it stays queued
    INTERRUPTED = 130  # Ctrl-C


class SchedulerError(Exception):
    """Root of every error the scheduler raises on purpose."""

    exit_code = ExitCode.REFUSED


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with the table, located as precisely as the file allows."""

    file: str
    line: int | None
    where: str
    message: str

    def __str__(self) -> str:
        location = f"{self.file}:{self.line}" if self.line else self.file
        return f"{location}: {self.where}: {self.message}" if self.where else f"{location}: {self.message}"


class TableError(SchedulerError):
    """schedules.toml was refused; ``problems`` lists all that is wrong with it, in file order."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems, key=lambda p: (p.file, p.line or 0, p.where, p.message))
        super().__init__("\n".join(str(p) for p in self.problems))


class SettingsError(SchedulerError):
    """A setting, or the combination of settings and environment, is refused."""


class UsageError(SchedulerError):
    """An argument's value is refused (an unknown schedule, --count 0): exit 1 with this message.
    A malformed command line is argparse's to refuse, with its own exit 2."""


class RedisUnavailable(SchedulerError):
    """Redis did not answer; the message never contains the URL's password."""

    exit_code = ExitCode.UNAVAILABLE


class RedisRefused(RedisUnavailable):
    """Redis answered, and refused the command with an error reply (OOM, READONLY, BUSY, WRONGTYPE,
    a script's error): it is reachable, but this did not happen. ``reply`` is Redis's own words
    (they name the command or key, never a credential)."""

    def __init__(self, doing: str, reply: str, message: str | None = None) -> None:
        self.doing = doing
        self.reply = reply
        super().__init__(message or f"{doing}: {reply}")


class RedisPermissionError(RedisRefused):
    """Redis refused a command for lack of permission (NOPERM, or a script's command refused by the
    ACL): the Redis user lacks something ``scheduler acl`` grants. ``refusal`` is Redis's own words
    (they name the command, key or channel, never a credential); it tells one missing permission
    from another, so a replica reports each once."""

    def __init__(self, doing: str, refusal: str) -> None:
        self.refusal = refusal
        super().__init__(doing, refusal,
                         f"Redis refused a command for lack of permission while {doing} ({refusal}): "
                         "the scheduler's Redis user needs the ACL printed by `scheduler acl`")


class NotLeader(SchedulerError):
    """A fenced write found another replica's lease (or none): the caller must stop acting."""

    def __init__(self, replica_id: str, epoch: int) -> None:
        self.replica_id = replica_id
        self.epoch = epoch
        super().__init__(f"replica {replica_id!r} no longer holds the lease of epoch {epoch}")
