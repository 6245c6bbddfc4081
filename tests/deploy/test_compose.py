"""deploy/docker-compose.yml, read (no Docker engine runs here): it parses, its services are the
trial the docs describe, and every file it builds from or mounts exists."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
COMPOSE = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
REPLICAS = ["replica-a", "replica-b", "replica-c"]


def test_redis_and_three_replicas_and_a_worker():
    assert set(SERVICES) == {"redis", *REPLICAS, "worker"}


def test_redis_never_evicts():
    redis = SERVICES["redis"]
    assert redis["image"].startswith("redis:7")
    command = redis["command"]
    assert command[command.index("--maxmemory-policy") + 1] == "noeviction"


def test_the_replicas_are_built_from_the_dockerfile_and_point_at_the_redis_service():
    ids = set()
    for name in REPLICAS:
        replica = SERVICES[name]
        build = replica["build"]
        assert (DEPLOY / build["context"] / build["dockerfile"]).resolve() == (DEPLOY.parent / "Dockerfile")
        environment = replica["environment"]
        url = urlsplit(environment["SCHEDULER_REDIS_URL"])
        assert (url.scheme, url.hostname, url.port) == ("redis", "redis", 6379)
        assert environment["SCHEDULER_LOG_JSON"] == "true"
        assert replica["depends_on"]["redis"]["condition"] == "service_healthy"
        assert replica["read_only"] is True
        ids.add(environment["SCHEDULER_REPLICA_ID"])
    assert ids == set(REPLICAS)


def test_the_worker_runs_the_example_script_it_mounts():
    worker = SERVICES["worker"]
    (volume,) = worker["volumes"]
    source, target, mode = volume.split(":")
    assert (DEPLOY / source).is_file() and mode == "ro"
    assert worker["entrypoint"] == ["python", target]
    assert urlsplit(worker["environment"]["WORKER_REDIS_URL"]).hostname in SERVICES
    assert worker["environment"]["WORKER_STREAM"] == "{scheduler}:queue:default"


def test_nothing_is_published_beyond_loopback():
    for name, service in SERVICES.items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), (name, port)
