"""``scheduler health``: ask a running replica on this host whether it is healthy (or ready).

GETs ``http://SCHEDULER_HTTP_HOST:SCHEDULER_HTTP_PORT/healthz`` (``/readyz`` with ``--ready``) with a
2 s timeout and prints one line: exit 0 on 200, 1 otherwise. It is what a Dockerfile HEALTHCHECK or an
ECS task's healthCheck runs, inside the replica's container.

Like every command it refuses a SCHEDULER_* variable that is not a setting; --config names the table
whose queues may name one with redis_url_env (read only when such a variable is set: without one, no
table is needed).
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request

from scheduler.cli._common import add_config_argument
from scheduler.errors import ExitCode
from scheduler.settings import load_settings

TIMEOUT = 2.0
# A host the server listens on for every address is asked on loopback.
ANY_ADDRESS = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}
# The replica is on this host: never through an HTTP proxy from the environment.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("health", help="check a running replica's /healthz (or /readyz)",
                                 description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ready", action="store_true", help="check /readyz instead: Redis answers, and the "
                        "replica leads or stands by")
    add_config_argument(parser, "the table whose queues' redis_url_env variables may be set")
    parser.set_defaults(handler=command)


def command(args: argparse.Namespace) -> ExitCode:
    settings = load_settings()
    path = "/readyz" if args.ready else "/healthz"
    if not settings.http_port:
        print("scheduler health: no endpoint to ask: SCHEDULER_HTTP_PORT=0 turns the HTTP server off",
              file=sys.stderr)
        return ExitCode.REFUSED
    host = ANY_ADDRESS.get(settings.http_host.strip(), settings.http_host.strip())
    url = f"http://{f'[{host}]' if ':' in host else host}:{settings.http_port}{path}"
    try:
        with _OPENER.open(url, timeout=TIMEOUT) as response:
            status, body = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, body = error.code, error.read()
    except (OSError, ValueError) as error:
        reason = getattr(error, "reason", None) or error
        print(f"scheduler health: {url}: no answer: {reason}", file=sys.stderr)
        return ExitCode.REFUSED
    summary = _summary(body)
    if status == 200:
        print(f"{url}: {summary}")
        return ExitCode.OK
    print(f"scheduler health: {url}: HTTP {status}: {summary}", file=sys.stderr)
    return ExitCode.REFUSED


def _summary(body: bytes) -> str:
    """The probe's answer in a few words: its status and reason, or the body's first line."""
    try:
        answer = json.loads(body)
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        return body.decode(errors="replace").strip().splitlines()[0][:200] if body.strip() else "(empty)"
    words = [str(answer.get("status", "?"))]
    if answer.get("reason"):
        words.append(str(answer["reason"]))
    if answer.get("state"):
        words.append(str(answer["state"]))
    if "epoch" in answer:
        words.append(f"epoch {answer['epoch']}")
    return ", ".join(words)
