"""What a reload (SIGHUP) changes at once and what waits for a restart.

Watches, nodes, presets, timings, notification targets and the per-drop upload count
apply at once; the pools grow to new sizes (they do not shrink: the limits are enforced
where work is handed out). The settings below are bound to open files and sockets, so a
change to them is reported and applied at the next start.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from odx_agent.config import AgentConfig

RESTART_ONLY = ("state_file", "metrics", "callback_url", "callback_listen")


def restart_only_changes(running: AgentConfig, loaded: AgentConfig) -> list[str]:
    """Given the running and the newly loaded configuration, return the keys that differ
    but only take effect after a restart."""
    return [key for key in RESTART_ONLY if getattr(running, key) != getattr(loaded, key)]


class GrowingPool:
    """A thread pool of the daemon's, whose size can grow while it runs (the upload and
    probe pools do on a reload). Growing starts a larger pool for new work; jobs already
    handed to the old one finish there."""

    def __init__(self, size: int, name: str) -> None:
        self.size = max(1, size)
        self._name = name
        self._executor = ThreadPoolExecutor(self.size, name)
        self._outgrown: list[ThreadPoolExecutor] = []

    def submit(self, job: Any, /, *args: Any) -> Future[Any]:
        return self._executor.submit(job, *args)

    def grow(self, size: int) -> bool:
        """Make room for ``size`` jobs at once; return whether the pool grew."""
        if size <= self.size:
            return False
        outgrown, self._executor = self._executor, ThreadPoolExecutor(size, self._name)
        self.size = size
        outgrown.shutdown(wait=False)  # its queued and running jobs still run to the end
        self._outgrown.append(outgrown)
        return True

    def shutdown(self) -> None:
        """Stop taking work and drop jobs not yet started, here and in the pools it grew
        out of (running ones go on)."""
        for executor in (*self._outgrown, self._executor):
            executor.shutdown(wait=False, cancel_futures=True)
