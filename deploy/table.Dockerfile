# Your schedules.toml baked into an image derived from the scheduler's. Build it from the folder
# that holds your schedules.toml and the tenant files it names (docs/deploy.md):
#
#   docker build -f table.Dockerfile --build-arg SCHEDULER_IMAGE=<registry>/scheduler:0.1.0 \
#       -t <registry>/scheduler-table:<version> path/to/your/table/
#
# The build fails when the table does: `scheduler validate` runs on it here, so a broken table
# never becomes an image.
ARG SCHEDULER_IMAGE=scheduler:latest
FROM ${SCHEDULER_IMAGE}
COPY . /etc/scheduler/
RUN ["scheduler", "validate", "--config", "/etc/scheduler/schedules.toml"]
