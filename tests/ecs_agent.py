"""A stand-in for the ECS container agent's task scale-in protection endpoint, on a free loopback
port: it records every request and answers as the agent does (``{"protection": {...}}``), or with
a failure, an error or a bare HTTP status when a test says so."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PATH = "/task-protection/v1/state"
TASK_ARN = "arn:aws:ecs:ap-northeast-1:123456789012:task/cluster/0123456789abcdef"


@dataclass
class Request:
    method: str
    path: str
    content_type: str | None
    body: Any


class EcsAgent:
    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.protected = False
        self.answer: tuple[int, Any] | None = None  # (status, JSON body) instead of the agent's own answer
        self.hold = threading.Event()  # set: requests wait for `released` (up to 10 s) before answering
        self.released = threading.Event()
        self._lock = threading.Lock()
        agent = self

        class Handler(BaseHTTPRequestHandler):
            def do_PUT(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = raw
                agent._record(Request("PUT", self.path, self.headers.get("Content-Type"), body))
                if agent.hold.is_set():
                    agent.released.wait(10)
                status, reply = agent._reply(self.path, body)
                data = json.dumps(reply).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass  # the caller gave up waiting (a held request): nobody reads the answer

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def uri(self) -> str:
        """What ECS puts in ECS_AGENT_URI."""
        return f"http://127.0.0.1:{self.server.server_port}/api/task-0123"

    def start(self) -> "EcsAgent":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()

    def states(self) -> list[bool]:
        """ProtectionEnabled of every well-formed request, in order."""
        with self._lock:
            return [r.body.get("ProtectionEnabled") for r in self.requests if isinstance(r.body, dict)]

    def _record(self, request: Request) -> None:
        with self._lock:
            self.requests.append(request)

    def _reply(self, path: str, body: Any) -> tuple[int, Any]:
        if self.answer is not None:
            return self.answer
        if not path.endswith(PATH) or not isinstance(body, dict) or "ProtectionEnabled" not in body:
            return 400, {"error": {"Code": "InvalidParameterException", "Message": "bad request"}}
        self.protected = bool(body["ProtectionEnabled"])
        protection: dict[str, Any] = {"ProtectionEnabled": self.protected, "TaskArn": TASK_ARN}
        if self.protected:
            protection["ExpirationDate"] = "2026-11-24T20:00:00Z"
        return 200, {"protection": protection}
