"""The image, built and run: deploy/build-image.sh builds the Dockerfile with buildah on a local
Debian base and runs replicas from it against a redis-server of its own (buildah run; and as PID 1
on a read-only root). Each must take the lease, put firings on the stream and exit 0 on SIGTERM.

Needs root, buildah and debootstrap (.ci/run installs them). The first run makes the base with
debootstrap (about a minute); later runs reuse it and buildah's layer cache (seconds)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "deploy" / "build-image.sh"

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


def missing() -> str | None:
    if os.geteuid() != 0:
        return "building with buildah's chroot isolation, debootstrap and unshare need root"
    absent = [tool for tool in ("buildah", "debootstrap", "unshare", "redis-server", "redis-cli")
              if shutil.which(tool) is None]
    return f"not installed: {', '.join(absent)} (.ci/run installs them with apt-get)" if absent else None


@pytest.mark.timeout(1500)
def test_the_image_builds_and_its_replicas_lead_enqueue_and_stop_on_sigterm(tmp_path):
    reason = missing()
    if reason:
        pytest.skip(reason)
    result = subprocess.run(["bash", str(SCRIPT)], env={**os.environ, "TMPDIR": str(tmp_path)},
                            capture_output=True, text=True, timeout=1400)
    assert result.returncode == 0, result.stderr[-5000:]
    summary = result.stdout.strip().splitlines()[-1]
    assert summary.startswith("build-image: ok in "), summary
    lengths = [int(n) for n in re.findall(r"led, \{scheduler\}:queue:default at (\d+),", summary)]
    assert len(lengths) == 2 and 1 <= lengths[0] < lengths[1], summary  # each replica enqueued
    stops = [float(seconds) for seconds in re.findall(r"exited 0 ([\d.]+) s after SIGTERM", summary)]
    assert len(stops) == 2 and all(seconds < 10 for seconds in stops), summary
    assert "PID 1, read-only root, user 10001:10001" in summary
    print(summary)
