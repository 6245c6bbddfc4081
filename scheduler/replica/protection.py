"""ECS task scale-in protection while this replica leads (``SCHEDULER_ECS_TASK_PROTECTION=true``).

The leader asks its ECS container agent to keep its task out of scale-in and deployments
(``PUT $ECS_AGENT_URI/task-protection/v1/state`` with ``{"ProtectionEnabled": true,
"ExpiresInMinutes": 60}``), asks again every 30 minutes while it leads, and lifts the protection
(``{"ProtectionEnabled": false}``) once it no longer leads, so a scale-in takes standbys first. The
agent answers ``{"protection": {...}}``, or ``{"failure": {...}}`` / ``{"error": {...}}``.

Nothing here touches leadership: a call that fails logs a warning (once per kind until one succeeds)
and is tried again after RETRY_AFTER, or at once when leadership changes. The calls run on a timer of their own (replica/runner.py),
never on the lease's or the work loop's thread, with a short timeout.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from loguru import logger

from scheduler.errors import SchedulerError

PATH = "/task-protection/v1/state"
PROTECT_FOR_MINUTES = 60
RENEW_EVERY = 30 * 60.0  # seconds: well before the protection expires
RETRY_AFTER = 30.0  # seconds before a failed call is tried again
TIMEOUT = 2.0  # seconds for one call to the agent (it runs on the task's own host)

# The agent is on a link-local address: never through an HTTP proxy from the environment.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class ProtectionRefused(SchedulerError):
    """The ECS agent did not answer, or did not protect (or unprotect) the task."""


def put_protection(agent_uri: str, enabled: bool, minutes: int = PROTECT_FOR_MINUTES,
                   timeout: float = TIMEOUT) -> dict[str, Any]:
    """Set the task's scale-in protection; returns the agent's ``protection`` object."""
    body: dict[str, Any] = {"ProtectionEnabled": enabled}
    if enabled:
        body["ExpiresInMinutes"] = minutes
    request = urllib.request.Request(agent_uri.rstrip("/") + PATH, data=json.dumps(body).encode(), method="PUT",
                                     headers={"Content-Type": "application/json"})
    status = 200
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            raw = response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    except (OSError, ValueError) as error:
        raise ProtectionRefused(f"the ECS agent did not answer: {_reason(error)}") from None
    try:
        reply = json.loads(raw or b"{}")
    except ValueError:
        reply = {}
    if not isinstance(reply, dict):
        reply = {}
    failure, error = reply.get("failure"), reply.get("error")
    if isinstance(failure, dict):
        detail = failure.get("Detail")
        raise ProtectionRefused(f"the ECS agent refused: {failure.get('Reason', 'failure')}"
                                + (f" ({detail})" if detail else ""))
    if isinstance(error, dict):
        raise ProtectionRefused(f"the ECS agent refused: {error.get('Code', 'error')}: {error.get('Message', '')}")
    protection = reply.get("protection")
    if status >= 300 or not isinstance(protection, dict):
        raise ProtectionRefused(f"the ECS agent answered HTTP {status} without a protection: {raw[:200]!r}")
    return protection


def _reason(error: BaseException) -> str:
    reason = getattr(error, "reason", None) or error
    return str(reason) or type(error).__name__


class TaskProtection:
    """Brings the agent's protection of this task in line with whether the replica leads."""

    def __init__(self, agent_uri: str, clock: Callable[[], float] = time.monotonic,
                 minutes: int = PROTECT_FOR_MINUTES, renew_every: float = RENEW_EVERY,
                 retry_after: float = RETRY_AFTER, timeout: float = TIMEOUT) -> None:
        self.agent_uri = agent_uri
        self.clock = clock
        self.minutes = minutes
        self.renew_every = renew_every
        self.retry_after = retry_after
        self.timeout = timeout
        self.protected: bool | None = None  # None: not known yet (a restarted container may still be protected)
        self._granted_at = 0.0
        self._retry_at = 0.0  # a failed call is not made again before this, unless leadership changed
        self._failed: bool | None = None  # what the failed call asked for
        self._warned: bool | None = None  # the call whose failure was last logged, until one succeeds

    def turn(self, leading: bool) -> None:
        """Protect (or renew) while ``leading``, unprotect otherwise; a call only when something changes."""
        now = self.clock()
        if now < self._retry_at and leading == self._failed:
            return
        if leading:
            if self.protected and now - self._granted_at < self.renew_every:
                return
        elif self.protected is False:
            return
        self._put(leading, now)

    def release(self) -> None:
        """The replica stops: lift the protection now, whatever the retry timer says."""
        if self.protected is not False:
            self._put(False, self.clock())

    def _put(self, enabled: bool, now: float) -> None:
        try:
            put_protection(self.agent_uri, enabled, self.minutes, self.timeout)
        except ProtectionRefused as error:
            self._retry_at, self._failed = now + self.retry_after, enabled
            if self._warned is not enabled:
                self._warned = enabled
                logger.warning("could not {} ECS task scale-in protection: {}; trying again every {:.0f}s",
                               "turn on" if enabled else "turn off", error, self.retry_after)
            return
        self._failed = None
        if self._warned is not None:
            self._warned = None
            logger.info("the ECS agent answers again")
        if enabled and not self.protected:
            logger.info("ECS task scale-in protection on while leading ({} min, renewed every {:.0f} min)",
                        self.minutes, self.renew_every / 60)
        elif not enabled:
            logger.info("ECS task scale-in protection off: not leading")
        self.protected, self._granted_at = enabled, now
