"""A real ``celery worker`` process consuming from the test's redis-server.

It runs a tasks module written into the worker's own directory: the task ``RecordTask`` RPUSHes
``{"task": "RecordTask", "id": <task id>, "firing": <its argument>}`` onto the ``performed`` list
of the same Redis, which ``performed()`` reads back.

Acknowledgement is late (after the task returns) and kombu's visibility timeout is short, so the
message of a worker killed mid-task sits in kombu's ``unacked`` hash and the next sweep by any live
worker of the same Redis puts it back on its queue: a killed worker's firing is redelivered, not
lost.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Sequence
from pathlib import Path

import redis

from redis_server import wait_for

PERFORMED_KEY = "performed"

MODULE = "recorder_tasks"

TASKS_SOURCE = f'''\
import json
import os

import redis
from celery import Celery

REDIS_URL = os.environ["RECORDER_REDIS_URL"]
VISIBILITY_TIMEOUT = float(os.environ["RECORDER_VISIBILITY_TIMEOUT"])

store = redis.Redis.from_url(REDIS_URL)

app = Celery("{MODULE}", broker=REDIS_URL)
app.conf.update(
    broker_connection_retry_on_startup=True,
    # Ack after the task returns; requeue if a pool process dies under it.
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    # Reserve no more than the pool can run, so few messages wait unacked.
    worker_prefetch_multiplier=1,
    worker_enable_remote_control=False,
    broker_transport_options={{
        "visibility_timeout": VISIBILITY_TIMEOUT,
        # Sweep unacked messages every second (kombu's default is every 10 x 10 seconds).
        "unacked_restore_interval": 1,
        "unacked_restore_throttle": 1,
        # The sweep's lock; kombu's 300 s default outlives a worker killed while holding it.
        "unacked_mutex_expire": VISIBILITY_TIMEOUT,
    }},
)


@app.task(name="RecordTask", bind=True, ignore_result=True)
def record(self, firing):
    store.rpush("{PERFORMED_KEY}", json.dumps({{"task": "RecordTask", "id": self.request.id, "firing": firing}}))
'''


def performed(client: redis.Redis) -> list[dict]:
    """Every task performed so far, oldest first."""
    return [json.loads(entry) for entry in client.lrange(PERFORMED_KEY, 0, -1)]


class CeleryWorker:
    """``celery worker`` (prefork pool, two processes) consuming ``queues`` on ``redis_url``.

    It runs in a session of its own so that stop() and kill() reach its pool processes too.
    """

    def __init__(
        self,
        redis_url: str,
        directory: Path,
        queues: Sequence[str],
        visibility_timeout: float = 5.0,
    ) -> None:
        self.redis_url = redis_url
        self.directory = directory
        self.queues = list(queues)
        self.visibility_timeout = visibility_timeout
        self.nodename = f"recorder-{uuid.uuid4().hex[:8]}@localhost"
        self.log_path = directory / "worker.log"
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 30.0) -> "CeleryWorker":
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / f"{MODULE}.py").write_text(TASKS_SOURCE)
        env = {
            **os.environ,
            "PYTHONPATH": str(self.directory),
            "RECORDER_REDIS_URL": self.redis_url,
            "RECORDER_VISIBILITY_TIMEOUT": str(self.visibility_timeout),
        }
        with self.log_path.open("ab") as log:
            log_start = log.tell()
            self.process = subprocess.Popen(
                [
                    sys.executable, "-m", "celery", "-A", MODULE, "worker",
                    "-Q", ",".join(self.queues), "-n", self.nodename,
                    "-c", "2", "--pool", "prefork",
                    "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "info",
                ],
                cwd=self.directory,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        ready = f" {self.nodename} ready.".encode()  # logged once it consumes (celery/apps/worker.py)

        def is_ready() -> bool:
            if self.process.poll() is not None:
                raise RuntimeError(f"celery worker {self.nodename} exited during start-up:\n{self.log()}")
            return ready in self.log_path.read_bytes()[log_start:]

        wait_for(is_ready, timeout, message=f"{self.nodename} ready")
        return self

    def log(self) -> str:
        """Everything the worker has written to stdout and stderr (its log), across restarts."""
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 10.0) -> None:
        """Warm shutdown (SIGTERM: finish running tasks, requeue reserved ones); SIGKILL at the deadline."""
        if self.process is None:
            return
        self._signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout)
        self.kill()

    def kill(self) -> None:
        """SIGKILL the worker and every process of its session: no orphaned pool process survives."""
        if self.process is None:
            return
        self._signal(signal.SIGKILL)
        self.process.wait(10)
        # SIGKILL is delivered asynchronously: the pool processes die (and are reaped) a moment later.
        wait_for(self._session_gone, 10, message=f"every process of {self.nodename} gone")
        self.process = None

    def _signal(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signum)

    def _session_gone(self) -> bool:
        try:
            os.killpg(self.process.pid, 0)
        except ProcessLookupError:
            return True
        return False

    def __enter__(self) -> "CeleryWorker":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()
