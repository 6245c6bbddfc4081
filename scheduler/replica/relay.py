"""The leader's relay: firings in an outbox go on to their target outside the scheduler's Redis.

A queue whose target lives elsewhere (SQS; a Sidekiq or Celery Redis of its own) is written by the
fenced scripts to its outbox, a stream in the scheduler's Redis (scheduler/targets). This thread,
while its replica leads, reads each outbox in order, hands a batch to the queue's sender, and removes
from the outbox only what the target accepted. Dying between the two sends the batch again: the
targets deduplicate on ids derived from the firing id (docs/queues.md says how far that goes).

The relay is fenced per request, not per batch. No script can fence a send to SQS or to another Redis
(the lease lives in the scheduler's Redis), so the sender asks the relay's fence, ``lease.held``,
before each request to the target (every SendMessageBatch of ten; the Redis sender's one script
call). Once it says no, nothing more of the batch is sent: the rest stays in the outbox for the next
leader, and the relay logs a step-down, not a target failure. So a leader stopped mid-batch (SIGSTOP,
a frozen VM) and replaced while it sleeps sends nothing more when it wakes.

``lease.held`` is the lease as this replica's monotonic clock sees it (scheduler/lease.py): yes only
until TTL less a margin after the last successful renewal was *sent*, while Redis counts that TTL from
when it ran the renewal, later; a lease this replica gives up, or learns it lost, is dropped locally at
once. So whenever it says yes, the lease key is still this replica's for at least the margin more, and
no standby can hold the lease (it takes one only once the key is gone), as long as Redis keeps its
data and its clock runs at about the rate of ours, which every promise assumes (docs/guarantees.md).
A round trip before each request (GET lease == token) would say yes at those same moments: it would
add a round trip per ten firings and see only a lease key lost early (Redis lost data, evicted keys,
failed over), which no promise covers. Nor would it close the window that remains, since it too is
read before the request goes out: a pause longer than the margin between the check and the request
reaching the target (or botocore retrying the request that long). That lets through at most the one
request in flight (ten firings to SQS, one batch to a Redis target), which the target deduplicates as
far as it does a batch sent again after a relay died between send and removal (docs/queues.md).

A queue whose target fails backs off on its own; the other outboxes keep moving. The backlog (how
many firings wait, and since when) is logged when it is older than BACKLOG_WARNING.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta

from loguru import logger

from scheduler.backoff import backoff
from scheduler.errors import RedisUnavailable, SchedulerError
from scheduler.lease import Lease
from scheduler.metrics import Metrics
from scheduler.replica.senders import Sender, sender_for
from scheduler.settings import Settings
from scheduler.store.state import Store
from scheduler.table import QueueSpec
from scheduler.targets import STREAM_FIELDS, Routes

BATCH = 100  # firings taken from one outbox at a time
BLOCK = timedelta(milliseconds=500)  # how long a read waits for new firings
IDLE = 1.0  # seconds between checks while standing by
MAX_BACKOFF = 30.0
BACKLOG_EVERY = 30.0  # seconds between backlog checks
BACKLOG_WARNING = timedelta(seconds=60)
START = "0-0"  # read an outbox from its first entry


class Relay:
    def __init__(self, store: Store, lease: Lease, settings: Settings, stopping: threading.Event,
                 routes: Callable[[], Routes], on_crash: Callable[[], None], metrics: Metrics | None = None) -> None:
        self.store = store
        self.routes = routes  # where each queue goes under the table the work loop runs now
        self.metrics = metrics or Metrics()
        self.lease = lease
        self.settings = settings
        self.stopping = stopping
        self.on_crash = on_crash
        self._senders: dict[str, tuple[QueueSpec, Sender]] = {}
        self._after: dict[str, str] = {}  # queue -> the last entry id handed on (entries up to it are gone)
        self._failures: dict[str, int] = {}
        self._resume_at: dict[str, float] = {}  # queue -> monotonic time its backoff ends
        self._next_backlog_check = 0.0
        self._thread = threading.Thread(target=self._run, name="relay", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)
        for _, sender in self._senders.values():
            sender.close()

    def _run(self) -> None:
        try:
            while not self.stopping.is_set():
                if self.lease.held:
                    self._turn()
                else:
                    self._after.clear()
                    self.stopping.wait(IDLE)
        except Exception:
            logger.opt(exception=True).critical("the relay failed; this replica stops")
            self.on_crash()

    def _turn(self) -> None:
        try:
            queues = self.store.outbox_queues()
            self._check_backlog(queues)
            now = time.monotonic()
            after = {queue: self._after.get(queue, START) for queue in sorted(queues)
                     if self._resume_at.get(queue, 0.0) <= now}
            if not after:
                self.stopping.wait(IDLE)
                return
            found = self.store.read_outboxes(after, BATCH, BLOCK)
        except RedisUnavailable as error:
            self.metrics.redis_error("relay")
            self._failed("", error)
            return
        if self._failures.pop("", 0):
            logger.info("the relay reads its outboxes again")
        for queue, entries in found.items():
            if self.stopping.is_set() or not self.lease.held:
                return
            try:
                self._hand_on(queue, entries)
            except SchedulerError as error:
                self._failed(queue, error)
            else:
                if self._failures.pop(queue, 0):
                    logger.info("queue {}: the relay delivers again", queue)

    def _hand_on(self, queue: str, entries: list[tuple[str, dict[str, str]]]) -> None:
        for entry, fields in entries:
            missing = sorted(set(STREAM_FIELDS) - fields.keys())
            if missing:
                # Not written by the enqueue script: stop here, loudly, rather than lose or guess.
                raise RelayRefused(f"outbox entry {entry} lacks {', '.join(missing)}; "
                                   f"remove it with XDEL {self.store.keys.outbox(queue)} {entry}")
        fenced = False

        def may_send() -> bool:  # asked before each request; once it says no, it stays no for this batch
            nonlocal fenced
            fenced = fenced or not self.lease.held
            return not fenced

        accepted = self._sender(queue).send([fields for _, fields in entries], may_send)
        self.store.remove_from_outbox(queue, [entry for (entry, _), ok in zip(entries, accepted) if ok])
        refused = accepted.count(False)
        if fenced:
            logger.info("queue {}: the lease may be gone, stepping down: {} of {} firings of this batch stay in "
                        "the outbox for the next leader", queue, refused, len(entries))
            return
        if refused:  # _failed reads this outbox from its start again, after the backoff
            raise RelayRefused(f"the target refused {refused} of {len(entries)} firings; they stay in the outbox")
        self._after[queue] = entries[-1][0]

    def _sender(self, queue: str) -> Sender:
        spec = self.routes().spec(queue)
        cached = self._senders.get(queue)
        if cached is not None and cached[0] == spec:
            return cached[1]
        if cached is not None:
            cached[1].close()
            del self._senders[queue]
        if not spec.remote:
            raise RelayRefused(f"[queues.{spec.entry}] no longer names a target outside this Redis; its firings "
                               "wait in the outbox until the table declares one again")
        sender = sender_for(spec, queue, self.store.keys, self.settings)
        self._senders[queue] = (spec, sender)
        return sender

    def _failed(self, queue: str, error: Exception) -> None:
        failures = self._failures[queue] = self._failures.get(queue, 0) + 1
        if failures == 1:
            logger.error("{}the relay could not deliver: {}; retrying", f"queue {queue}: " if queue else "", error)
        wait = backoff(failures, self.settings.retry_interval.total_seconds(), MAX_BACKOFF)
        self._after.pop(queue, None)
        if queue:
            self._resume_at[queue] = time.monotonic() + wait
        else:
            self.stopping.wait(wait)

    def _check_backlog(self, queues: set[str]) -> None:
        if time.monotonic() < self._next_backlog_check:
            return
        self._next_backlog_check = time.monotonic() + BACKLOG_EVERY
        now = self.store.time()
        for queue in sorted(queues):
            count, oldest = self.store.outbox_backlog(queue)
            if oldest is not None and now - oldest > BACKLOG_WARNING:
                logger.warning("queue {}: {} firings wait in the outbox, the oldest for {}", queue, count,
                               _seconds(now - oldest))


class RelayRefused(SchedulerError):
    """The queue's firings cannot go on now; they stay in the outbox."""


def _seconds(span: timedelta) -> str:
    return f"{span.total_seconds():.0f}s"
