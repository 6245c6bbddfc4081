from scheduler.cli.main import entrypoint

entrypoint()
