"""A stand-in for a replica's health and readiness answers, for the HTTP endpoint tests."""

from __future__ import annotations


class Probes:
    def __init__(self) -> None:
        self.healthy = (True, {"status": "ok"})
        self.ready = (True, {"status": "ok", "state": "leading", "leader": True, "epoch": 7})

    def healthz(self):
        return self.healthy

    def readyz(self):
        if isinstance(self.ready, Exception):
            raise self.ready
        return self.ready
