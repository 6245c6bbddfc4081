"""A real Sidekiq process (Debian's ruby-sidekiq 6.4 and ruby-activejob 6.1) for tests of what the
scheduler pushes: it performs jobs of the classes in ``JOBS_RUBY`` and each job records what it was
given in the Redis list ``performed``."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from pathlib import Path

import redis

from redis_server import wait_for

SIDEKIQ = shutil.which("sidekiq")
INSTALL_HINT = "apt-get install ruby-sidekiq ruby-activejob"
PERFORMED = "performed"

# Loaded with `sidekiq -r`. RecordJob is a plain Sidekiq worker (perform gets the firing as a Hash with
# string keys); RecordActiveJob goes through ActiveJob's Sidekiq adapter, so Sidekiq runs
# ActiveJob::QueueAdapters::SidekiqAdapter::JobWrapper, which deserializes the job's arguments.
JOBS_RUBY = """\
require "json"
require "sidekiq"
require "active_job"

# Debian pairs Sidekiq 6.4 with redis-rb 4.8, which warns about Sidekiq's calls on every fetch.
Redis.silence_deprecations = true if Redis.respond_to?(:silence_deprecations=)

ActiveJob::Base.queue_adapter = :sidekiq
ActiveJob::Base.logger = Sidekiq.logger

module Performed
  def self.record(entry)
    Sidekiq.redis { |c| c.rpush("%(list)s", JSON.generate(entry)) }
  end
end

class RecordJob
  include Sidekiq::Worker

  def perform(firing)
    Performed.record("class" => "RecordJob", "jid" => jid, "firing" => firing)
  end
end

class RecordActiveJob < ActiveJob::Base
  def perform(firing)
    Performed.record(
      # JobWrapper hands Sidekiq's jid to the job as provider_job_id.
      "class" => "RecordActiveJob", "job_id" => job_id, "provider_job_id" => provider_job_id,
      "firing" => firing.to_h,
      # true only for a HashWithIndifferentAccess, which is what "_aj_hash_with_indifferent_access" asks for
      "indifferent" => firing[:tenant] == firing["tenant"],
    )
  end
end
""" % {"list": PERFORMED}


def performed(client: redis.Redis) -> list[dict]:
    """What the Sidekiq jobs recorded, in the order they were performed."""
    return [json.loads(entry) for entry in client.lrange(PERFORMED, 0, -1)]


class SidekiqWorker:
    """``sidekiq -r <jobs.rb> -q <queue>... -c 2`` against ``redis_url``, logging to ``directory``/sidekiq.log.

    ``start`` returns once Sidekiq's heartbeat (its identity in the ``processes`` set) is in Redis."""

    def __init__(self, redis_url: str, directory: Path, queues: tuple[str, ...] = ("default",)) -> None:
        if SIDEKIQ is None:
            raise RuntimeError(f"sidekiq is not on PATH ({INSTALL_HINT})")
        self.redis_url = redis_url
        self.directory = Path(directory)
        self.queues = queues
        self.jobs_file = self.directory / "jobs.rb"
        self.log_file = self.directory / "sidekiq.log"
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 30.0) -> "SidekiqWorker":
        self.directory.mkdir(parents=True, exist_ok=True)
        self.jobs_file.write_text(JOBS_RUBY)
        queue_options = [option for queue in self.queues for option in ("-q", queue)]
        with self.log_file.open("ab") as log:
            # Its own session (process group), so stop and kill reach anything it spawns.
            self.process = subprocess.Popen(
                [SIDEKIQ, "-r", str(self.jobs_file), *queue_options, "-c", "2"],
                env={**os.environ, "REDIS_URL": self.redis_url},
                cwd=self.directory,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            with redis.Redis.from_url(self.redis_url, socket_timeout=5) as client:
                wait_for(
                    lambda: self._ready(client), timeout=timeout, message=f"sidekiq's heartbeat in {self.redis_url}"
                )
        except BaseException:
            self.kill()
            raise
        return self

    def _ready(self, client: redis.Redis) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise RuntimeError(f"sidekiq exited with {self.process.returncode}:\n{self.log()}")
        # Sidekiq's identity is "<hostname>:<pid>:<nonce>"; its heartbeat thread SADDs it to "processes"
        # as it launches the processors that fetch jobs.
        try:
            members = client.smembers("processes")
        except redis.RedisError:
            return False
        return any(member.decode().rsplit(":", 2)[1] == str(self.process.pid) for member in members)

    def log(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

    def stop(self, timeout: float = 15.0) -> None:
        """TERM: Sidekiq finishes the jobs in hand, flushes its stats and exits; KILL if it takes longer."""
        if self.process is not None:
            self._signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        self.kill()

    def kill(self) -> None:
        """KILL the whole process group (also sweeping up anything left after a clean exit) and reap."""
        if self.process is not None:
            self._signal(signal.SIGKILL)
            self.process.wait(10)
            self.process = None

    def _signal(self, signum: int) -> None:
        assert self.process is not None
        try:
            os.killpg(self.process.pid, signum)
        except ProcessLookupError:
            pass  # the group is already empty

    def __enter__(self) -> "SidekiqWorker":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()
