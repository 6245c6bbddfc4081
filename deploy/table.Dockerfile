# Your schedules.toml baked into an image derived from the scheduler's. Build it from the folder
# that holds your schedules.toml and the tenant files it names (docs/deploy.md):
#
#   docker build -f table.Dockerfile --build-arg BASE=<registry>/scheduler:0.1.0 \
#       -t <registry>/scheduler-table:<version> path/to/your/table/
#
# BASE, the scheduler's image, has no default: a build without it fails rather than deriving
# from whichever scheduler:latest the builder has. The build fails when the table does:
# `scheduler validate` runs on it here, so a broken table never becomes an image.
ARG BASE
FROM ${BASE}
COPY . /etc/scheduler/
RUN ["scheduler", "validate", "--config", "/etc/scheduler/schedules.toml"]
