"""The Dockerfile, read as text (no engine needed): what ECS relies on is there. The image itself is
built and run in test_image.py."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    joined, pending = [], ""
    for line in path.read_text().splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        joined.append(pending + line)
        pending = ""
    result = []
    for line in joined:
        word, _, rest = line.strip().partition(" ")
        result.append((word.upper(), rest.strip()))
    return result


def final_stage(steps: list[tuple[str, str]]) -> list[tuple[str, str]]:
    last_from = max(index for index, (word, _) in enumerate(steps) if word == "FROM")
    return steps[last_from:]


def only(steps: list[tuple[str, str]], word: str) -> str:
    found = [rest for name, rest in steps if name == word]
    assert len(found) == 1, f"{word}: {found}"
    return found[0]


STEPS = instructions(REPO / "Dockerfile")
FINAL = final_stage(STEPS)


def test_the_base_is_a_build_argument_defaulting_to_an_official_slim_python():
    assert STEPS[0] == ("ARG", "BASE=python:3.11-slim")
    froms = [rest for word, rest in STEPS if word == "FROM"]
    assert len(froms) == 2, "a build stage and a final stage"
    assert all(rest.split()[0] == "${BASE}" for rest in froms)


def test_entrypoint_and_cmd_are_exec_form_so_sigterm_reaches_the_scheduler():
    assert json.loads(only(FINAL, "ENTRYPOINT")) == ["scheduler"]
    assert json.loads(only(FINAL, "CMD")) == ["run", "--config", "/etc/scheduler/schedules.toml"]
    assert only(FINAL, "STOPSIGNAL") == "SIGTERM"
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert "scheduler" in scripts


def test_it_runs_as_a_numeric_non_root_user():
    assert only(FINAL, "ARG") == "UID=10001"
    assert only(FINAL, "USER") == "${UID}:${UID}"


def test_the_health_check_calls_scheduler_health():
    healthcheck = only(FINAL, "HEALTHCHECK")
    assert json.loads(healthcheck.partition(" CMD ")[2]) == ["scheduler", "health"]


def test_logs_are_unbuffered_and_the_sqs_extra_is_installed():
    env = only(FINAL, "ENV").split()
    assert "PYTHONUNBUFFERED=1" in env
    installs = " ".join(rest for word, rest in STEPS if word == "RUN")
    assert "'.[sqs]'" in installs
    assert "sqs" in tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]


def test_the_sample_table_and_its_tenant_file_are_where_cmd_looks():
    copies = [rest for word, rest in FINAL if word == "COPY"]
    assert "schedules.toml /etc/scheduler/schedules.toml" in copies
    assert "tenants /etc/scheduler/tenants" in copies
    table = tomllib.loads((REPO / "schedules.toml").read_text())
    files = [entry["file"] for entry in table["tenants"].values() if isinstance(entry, dict) and "file" in entry]
    assert files and all(name.startswith("tenants/") and (REPO / name).is_file() for name in files)


def test_the_build_context_keeps_what_the_dockerfile_copies_and_drops_the_rest():
    ignored = [line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")]
    for needed in (".git", ".venv", "**/__pycache__", "**/.pytest_cache", "tests"):
        assert needed in ignored
    copied = {rest.split()[0] for word, rest in STEPS if word == "COPY" and not rest.startswith("--from")}
    assert copied == {"pyproject.toml", "README.md", "scheduler", "schedules.toml", "tenants"}
    assert not copied & set(ignored)
    assert all((REPO / name).exists() for name in copied)


def test_the_derived_table_image_validates_the_table_when_it_is_built():
    steps = instructions(REPO / "deploy" / "table.Dockerfile")
    assert [word for word, _ in steps] == ["ARG", "FROM", "COPY", "RUN"]
    assert only(steps, "ARG") == "BASE", "no default: a build without it fails instead of using scheduler:latest"
    assert only(steps, "FROM") == "${BASE}"
    assert only(steps, "COPY") == ". /etc/scheduler/"
    assert json.loads(only(steps, "RUN")) == ["scheduler", "validate", "--config", "/etc/scheduler/schedules.toml"]
