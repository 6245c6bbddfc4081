# The scheduler's image: `scheduler run` on the sample table, as a non-root user, with the `sqs` extra.
#
#   docker build -t scheduler .                                  # python:3.11-slim
#   docker build --build-arg BASE=my-registry/python:3.11 -t scheduler .
#
# Your own table goes into an image derived from this one: deploy/table.Dockerfile, docs/deploy.md.
# The base only needs `python3` with the venv module (python:3.11-slim, or Debian's python3 and
# python3-venv): the scheduler lives in a venv under /opt/scheduler, whichever python3 made it.
ARG BASE=python:3.11-slim

# ---- build: a venv with the dependencies, then the scheduler's own wheel ----------------------------
FROM ${BASE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1
RUN python3 -m venv /opt/scheduler
WORKDIR /src

# Build-time only: a package index (PIP_INDEX_URL) and, as the secret `pip-cert`, a CA bundle for a
# TLS-intercepting proxy (`--secret id=pip-cert,src=...`; without it the mount is simply empty).
# Neither reaches the final stage, which starts again from BASE. RUN --mount needs BuildKit (Docker's
# default builder since 23.0) or buildah.
ARG PIP_INDEX_URL

# The dependencies first, from pyproject.toml alone over an empty package, so a change to the code
# does not download them again.
COPY pyproject.toml ./
RUN --mount=type=secret,id=pip-cert \
    set -eu; \
    if [ -s /run/secrets/pip-cert ]; then export PIP_CERT=/run/secrets/pip-cert; fi; \
    if [ -z "${PIP_INDEX_URL:-}" ]; then unset PIP_INDEX_URL; fi; \
    mkdir scheduler && touch scheduler/__init__.py README.md; \
    /opt/scheduler/bin/pip install -q '.[sqs]'; \
    /opt/scheduler/bin/pip uninstall -q -y scheduler; \
    rm -rf scheduler README.md build ./*.egg-info

# Then the scheduler itself, as a wheel (no editable install, no source tree in the image).
COPY README.md ./
COPY scheduler ./scheduler
RUN --mount=type=secret,id=pip-cert \
    set -eu; \
    if [ -s /run/secrets/pip-cert ]; then export PIP_CERT=/run/secrets/pip-cert; fi; \
    if [ -z "${PIP_INDEX_URL:-}" ]; then unset PIP_INDEX_URL; fi; \
    /opt/scheduler/bin/pip wheel -q --no-deps --wheel-dir /wheels .; \
    /opt/scheduler/bin/pip install -q --no-deps /wheels/scheduler-*.whl; \
    /opt/scheduler/bin/pip check; \
    /opt/scheduler/bin/pip uninstall -q -y pip setuptools

# ---- final: the base, the venv, the sample table, a user ---------------------------------------
FROM ${BASE}
ARG UID=10001
RUN groupadd --gid "${UID}" scheduler \
    && useradd --uid "${UID}" --gid "${UID}" --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin scheduler
COPY --from=build /opt/scheduler /opt/scheduler
# The sample table and the tenant file it names. Replace both in a derived image (docs/deploy.md).
COPY schedules.toml /etc/scheduler/schedules.toml
COPY tenants /etc/scheduler/tenants

# Logs reach the log driver as they happen; nothing writes .pyc files at run time (the root
# filesystem may be read-only: with SCHEDULER_REDIS_URL set, the scheduler writes nothing to disk).
ENV PATH=/opt/scheduler/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
USER ${UID}:${UID}
WORKDIR /etc/scheduler

# `scheduler health` asks this replica's own /healthz (127.0.0.1, SCHEDULER_HTTP_PORT, default 9108).
# Run in WORKDIR, it takes ./schedules.toml (the table) for the SCHEDULER_* names a queue's
# redis_url_env may give; any other SCHEDULER_* variable that is no setting makes it fail.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 CMD ["scheduler", "health"]

# Exec form: the scheduler is PID 1 and receives SIGTERM itself (no shell in between). It installs
# its own SIGTERM handler, hands the lease over and exits 0 within 2 s.
STOPSIGNAL SIGTERM
ENTRYPOINT ["scheduler"]
CMD ["run", "--config", "/etc/scheduler/schedules.toml"]
