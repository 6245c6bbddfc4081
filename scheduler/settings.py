"""Settings from ``SCHEDULER_*`` environment variables; the only place that builds them."""

from __future__ import annotations

import difflib
import math
import os
import re
import socket
from collections.abc import Iterable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from scheduler.durations import parse_duration
from scheduler.errors import SettingsError
from scheduler.urls import url_problem

ECS_METADATA_VARIABLES = ("ECS_CONTAINER_METADATA_URI_V4", "ECS_CONTAINER_METADATA_URI")
LOG_LEVELS = ("TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR", "CRITICAL")  # loguru's own
# Far beyond any sensible setting, and short enough that now plus (or minus) it stays a date
# APScheduler and a Redis stream id can hold.
LONGEST = timedelta(days=3650)
_HOST = re.compile(r"[A-Za-z0-9._:-]*")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SCHEDULER_", extra="ignore")

    redis_url: SecretStr | None = Field(default=None, description="redis://, rediss:// or unix:// URL; unset: embedded Redis")
    redis_ca_file: Path | None = Field(default=None, description="PEM bundle of a private CA trusted for rediss://, "
                                       "besides the system's CAs")
    lease_ttl: timedelta = Field(default=timedelta(seconds=10), description="how long a lease outlives its holder")
    retry_interval: timedelta = Field(default=timedelta(seconds=1), description="standbys retry this often")
    key_prefix: str = Field(default="{scheduler}", description="prefix of every Redis key; keep one hash tag")
    replica_id: str = Field(default="", description="this replica's name; default host-pid or the ECS task id")
    log_level: str = Field(default="INFO", description="one of LOG_LEVELS, in any case")
    log_json: bool = False
    reload_interval: timedelta = Field(default=timedelta(seconds=2), description="how often the table is re-read")
    stall_timeout: timedelta = Field(default=timedelta(seconds=10),
                                     description="a leader whose work loop shows no progress this long gives up")
    allow_eviction: bool = Field(default=False, description="lead even where Redis may evict keys (warns)")
    history_keep: timedelta = Field(default=timedelta(days=7), description="how long the decision ledger keeps a line")
    history_lines: int = Field(default=100_000, gt=0, le=1_000_000_000,
                               description="ledger lines kept per schedule, at most")
    http_host: str = Field(default="127.0.0.1", description="where /metrics, /healthz and /readyz listen")
    http_port: int = Field(default=9108, ge=0, le=65535, description="their port; 0: no HTTP server at all")
    eligible: bool = Field(default=True, description="false: never take the lease (serves health and metrics)")
    ecs_task_protection: bool = Field(default=False,
                                      description="ask the ECS agent to protect this task from scale-in while leading")

    @field_validator("lease_ttl", "retry_interval", "reload_interval", "stall_timeout", "history_keep", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            try:
                seconds = float(text)
            except ValueError:
                return parse_duration(text)
            if not math.isfinite(seconds):
                raise ValueError('must be a number of seconds or a duration like "10s"')
            try:
                return timedelta(seconds=seconds)
            except OverflowError:
                raise ValueError("is too long") from None
        return value

    @field_validator("lease_ttl", "retry_interval", "reload_interval", "stall_timeout", "history_keep")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("must be longer than zero")
        if value > LONGEST:
            raise ValueError(f"must be at most {LONGEST.days}d")
        return value

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, value: str) -> str:
        level = value.strip().upper()
        if level not in LOG_LEVELS:
            raise ValueError(f"must be one of {', '.join(LOG_LEVELS)} (in any case)")
        return level

    @field_validator("redis_url")
    @classmethod
    def _url(cls, value: SecretStr | None) -> SecretStr | None:
        problem = url_problem(value.get_secret_value().strip()) if value is not None else None
        if problem is not None:
            raise ValueError(problem)
        return value

    @field_validator("http_host")
    @classmethod
    def _host(cls, value: str) -> str:
        host = value.strip()
        if not _HOST.fullmatch(host):
            raise ValueError("must be a host name or an IP address (letters, digits, '.', '-', '_' and ':')")
        return host

    @field_validator("key_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        problem = prefix_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("redis_ca_file", mode="before")
    @classmethod
    def _unset_when_empty(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("redis_ca_file")
    @classmethod
    def _ca_file(cls, value: Path | None) -> Path | None:
        if value is None:
            return None
        try:
            text = value.read_bytes()
        except OSError as error:
            raise ValueError(f"cannot read {str(value)!r}: {error.strerror or error}") from None
        if b"-----BEGIN CERTIFICATE-----" not in text:
            raise ValueError(f"{str(value)!r} holds no PEM certificate (-----BEGIN CERTIFICATE-----)")
        return value

    @model_validator(mode="after")
    def _ca_file_needs_tls(self) -> Settings:
        url = self.redis_url.get_secret_value() if self.redis_url else ""
        if self.redis_ca_file is not None and urlsplit(url.strip()).scheme != "rediss":
            raise ValueError("SCHEDULER_REDIS_CA_FILE is set, but SCHEDULER_REDIS_URL is not a rediss:// URL: "
                             "the connection would not use TLS at all")
        return self

    def resolved_replica_id(self) -> str:
        return self.replica_id or ecs_task_id() or f"{socket.gethostname()}-{os.getpid()}"


def prefix_problem(prefix: str) -> str | None:
    """Why ``prefix`` cannot prefix the scheduler's keys, or None."""
    if prefix.count("{") != 1 or prefix.count("}") != 1 or prefix.index("{") > prefix.index("}"):
        return "must hold exactly one {hash tag}, so every key lands on one Redis Cluster slot"
    return None


def unknown_variables(environ: Mapping[str, str], allowed_extra: Iterable[str] = ()) -> list[tuple[str, str | None]]:
    """Each variable of ``environ`` named SCHEDULER_* that is neither a setting nor one of
    ``allowed_extra`` (a queue's redis_url_env), sorted, with the name it most likely meant, or None.
    Only names are looked at, never values.

    The prefix is matched as the environment spells it: ``scheduler_x`` is none of ours. After it,
    a setting's name in any case is the setting, as pydantic-settings reads it: ``SCHEDULER_Log_Level``.
    """
    prefix = Settings.model_config["env_prefix"]
    settings = {f"{prefix}{field}".upper() for field in Settings.model_fields}
    extra = set(allowed_extra)
    # Compared after the prefix, which every candidate shares (it would make anything look close).
    candidates = {name[len(prefix):].upper(): name for name in sorted(settings | extra) if name.startswith(prefix)}
    unknown = []
    for name in sorted(environ):
        if not name.startswith(prefix) or name in extra or name.upper() in settings:
            continue
        close = difflib.get_close_matches(name[len(prefix):].upper(), list(candidates), n=1)
        unknown.append((name, candidates[close[0]] if close else None))
    return unknown


def load_settings(**overrides: Any) -> Settings:
    """Build Settings from the environment; a bad variable becomes a SettingsError naming it."""
    try:
        return Settings(**overrides)
    except ValidationError as error:
        lines = []
        for problem in error.errors():
            message = problem["msg"].removeprefix("Value error, ")
            if not problem["loc"]:  # a rule about several settings: the message names them
                lines.append(message)
                continue
            name = "SCHEDULER_" + "_".join(str(part) for part in problem["loc"]).upper()
            lines.append(f"{name}: {message}")
        raise SettingsError("; ".join(lines)) from None


def on_ecs() -> bool:
    return any(os.environ.get(name) for name in ECS_METADATA_VARIABLES)


def ecs_agent_uri() -> str | None:
    """The ECS container agent's endpoint (ECS_AGENT_URI, set by ECS in every container), or None."""
    return os.environ.get("ECS_AGENT_URI") or None


def ecs_task_id() -> str | None:
    """The ECS task id, read from the task metadata endpoint named by the ECS variables (1 s timeout)."""
    import json
    import urllib.request

    for name in ECS_METADATA_VARIABLES:
        base = os.environ.get(name)
        if not base:
            continue
        try:
            with urllib.request.urlopen(f"{base}/task", timeout=1) as response:
                arn = json.load(response).get("TaskARN", "")
        except (OSError, ValueError):
            continue
        if arn:
            return arn.rsplit("/", 1)[-1]
    return None
