"""Run the simulated NodeODX node in a process of its own, so its cost stays out of the
figures measured for the clients and the agent."""

from __future__ import annotations

import re
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

READY_LINE = re.compile(r"listening on (http://\S+)")
START_SECONDS = 30.0


@contextmanager
def simulated_node(data_dir: Path, *, processing_seconds: float = 3.0) -> Iterator[str]:
    """Given a data folder, serve a simulated node on a free loopback port; yield its URL.

    The node runs as ``python -m odx_agent simulate-node`` and is stopped (SIGTERM, then
    SIGKILL after 10 s) when the block ends. Raise RuntimeError when it does not announce
    its URL within 30 s.
    """
    command = [
        sys.executable,
        "-m",
        "odx_agent",
        "simulate-node",
        "--port",
        "0",
        "--data-dir",
        str(data_dir),
        "--processing-seconds",
        str(processing_seconds),
    ]
    process = subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    try:
        yield _wait_for_url(process)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        assert process.stdout is not None
        process.stdout.close()


def _wait_for_url(process: subprocess.Popen[bytes]) -> str:
    assert process.stdout is not None
    deadline = time.monotonic() + START_SECONDS
    seen = b""
    while time.monotonic() < deadline and process.poll() is None:
        ready, _, _ = select.select([process.stdout], [], [], 0.2)
        if not ready:
            continue
        seen += process.stdout.readline()
        match = READY_LINE.search(seen.decode(errors="replace"))
        if match:
            return match.group(1)
    raise RuntimeError(f"the simulated node did not start: {seen.decode(errors='replace')}")
