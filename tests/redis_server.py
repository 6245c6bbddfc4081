"""A real redis-server on a free loopback port, which tests can stop, restart, pause and resume;
optionally serving TLS only (with certificates from tests/tls_certs.py), and with ACL users that
survive its restarts."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import redis

if TYPE_CHECKING:
    from tls_certs import TlsFiles


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(condition, timeout: float = 10.0, interval: float = 0.02, message: str = "condition"):
    """Poll ``condition`` until it returns something truthy; fail with ``message`` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


class RedisServer:
    """``binary`` defaults to the redis-server on PATH; ``env`` (say, a faketime clock) and ``options``
    (extra command-line settings such as ``("--maxmemory", "20mb")``) apply at every (re)start.

    With ``tls`` it listens for TLS only (``--port 0 --tls-port``): ``url`` is ``rediss://`` and
    ``client()`` trusts the test CA. ``add_user`` creates an ACL user (again after each restart); the
    default user stays the tests' all-powerful admin."""

    def __init__(
        self,
        directory: Path | None = None,
        port: int | None = None,
        binary: str | None = None,
        env: dict[str, str] | None = None,
        options: tuple[str, ...] = (),
        tls: TlsFiles | None = None,
    ) -> None:
        binary = binary or shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not on PATH (.ci/run installs it with apt-get)")
        self.binary = binary
        self.port = port or free_port()
        self.directory = directory or Path(tempfile.mkdtemp(prefix="redis-test-"))
        self.env = env
        self.options = options
        self.tls = tls
        self.users: dict[str, list[str]] = {}  # name -> ACL SETUSER arguments, applied at every start
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return self.url_for()

    def url_for(self, user: str | None = None, password: str | None = None, host: str = "127.0.0.1") -> str:
        """The server's URL, as ``user`` with ``password`` when given (``rediss://`` with TLS)."""
        scheme = "rediss" if self.tls else "redis"
        auth = f"{user or ''}:{password}@" if password is not None else ""
        return f"{scheme}://{auth}{host}:{self.port}/0"

    def client(self, **options) -> redis.Redis:
        if self.tls:  # the tests' own client: trusts the test CA, whatever host the certificate names
            options = {"ssl": True, "ssl_ca_certs": str(self.tls.ca), "ssl_check_hostname": False, **options}
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5, **options)

    def add_user(self, name: str, password: str, rules: list[str]) -> None:
        """Create (or redefine) an ACL user from scratch: ``reset on >password`` then ``rules``."""
        self.users[name] = [name, "reset", "on", f">{password}", *rules]
        if self.process is not None:
            self._apply_users()

    def acl_log(self) -> list[dict]:
        """What the ACL refused since the last reset (ACL LOG), newest first."""
        client = self.client()
        try:
            return client.acl_log()
        finally:
            client.close()

    def _apply_users(self) -> None:
        client = self.client()
        try:
            for arguments in self.users.values():
                client.execute_command("ACL", "SETUSER", *arguments)
        finally:
            client.close()

    def start(self) -> "RedisServer":
        # Keep data across restarts (appendonly, fsync always) so a restart tests recovery, not loss.
        self.directory.mkdir(parents=True, exist_ok=True)
        listen = ["--port", str(self.port)]
        if self.tls:
            listen = ["--port", "0", "--tls-port", str(self.port), "--tls-cert-file", str(self.tls.cert),
                      "--tls-key-file", str(self.tls.key), "--tls-ca-cert-file", str(self.tls.ca),
                      "--tls-auth-clients", "no"]
        self.process = subprocess.Popen(
            [
                self.binary, *listen, "--bind", "127.0.0.1", "--dir", str(self.directory),
                "--save", "", "--appendonly", "yes", "--appendfsync", "always", "--daemonize", "no",
                "--logfile", str(self.directory / "redis.log"), *self.options,
            ],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_for(self._answers, message=f"redis-server on port {self.port}")
        except AssertionError:
            self.kill()  # never leave a server behind that the caller has no handle on yet
            raise
        if self.users:
            self._apply_users()
        return self

    def _answers(self) -> bool:
        client = self.client()
        try:
            return bool(client.ping())
        except redis.AuthenticationError:
            return True  # started with --requirepass: it answers, just not to strangers
        except redis.RedisError:
            return False
        finally:
            client.close()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.process = None

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self.process = None

    def pause(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGCONT)

    def restart(self) -> None:
        self.stop()
        self.start()

    def restart_empty(self) -> None:
        """Restart with every key gone, as a Redis without persistence comes back from a crash."""
        self.stop()
        for entry in self.directory.iterdir():
            if entry.is_dir():
                shutil.rmtree(entry)
            elif entry.name != "redis.log":
                entry.unlink()
        self.start()
        client = self.client()
        try:
            assert client.dbsize() == 0, "the restarted redis-server still holds keys"
        finally:
            client.close()

    def cleanup(self) -> None:
        if self.process is not None:
            self.resume()
        self.kill()
        shutil.rmtree(self.directory, ignore_errors=True)
