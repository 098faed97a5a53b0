"""Run a command in its own process and measure what it cost: wall time, CPU, peak RSS."""

from __future__ import annotations

import os
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psutil  # type: ignore[import-untyped]

SAMPLE_SECONDS = 0.02


@dataclass(frozen=True)
class Measurement:
    """What one measured process (with every process it waited for) cost."""

    wall_seconds: float
    cpu_seconds: float
    peak_rss_mb: float
    total_rss_mb: float
    returncode: int
    stdout: str
    stderr: str


def run_measured(
    command: list[str],
    *,
    timeout: float,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> Measurement:
    """Given a command, run it to its end and return its Measurement.

    CPU comes from wait4() on that one child, so it covers the child and every descendant
    it waited for (a shell's curls, for instance) and nothing else this process runs.
    Memory is sampled from /proc every 20 ms: peak RSS is the largest VmHWM (the kernel's
    own high-water mark) of any single process of the tree, total RSS the largest sum of
    VmRSS over the tree at one sample. (ru_maxrss is not used: at exec() Linux folds the
    parent's high-water mark into the child's, so every child would inherit this process's
    size.) Raise
    TimeoutError (after killing the child) when it runs longer than timeout seconds.
    """
    with tempfile.TemporaryFile() as stdout_file, tempfile.TemporaryFile() as stderr_file:
        started = time.perf_counter()
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=stdout_file,
            stderr=stderr_file,
            env=env,
            cwd=cwd,
        )
        timed_out = threading.Event()
        finished = threading.Event()

        def kill_when_late() -> None:
            if not finished.wait(timeout):
                timed_out.set()
                process.kill()

        sampler = _MemorySampler(process.pid, finished)
        threads = [
            threading.Thread(target=kill_when_late, daemon=True),
            threading.Thread(target=sampler.run, daemon=True),
        ]
        for thread in threads:
            thread.start()
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        finished.set()
        for thread in threads:
            thread.join()
        process.returncode = os.waitstatus_to_exitcode(status)
        stdout_file.seek(0)
        stderr_file.seek(0)
        stdout = stdout_file.read().decode(errors="replace")
        stderr = stderr_file.read().decode(errors="replace")
    if timed_out.is_set():
        raise TimeoutError(f"{command[0]} ran longer than {timeout:.0f} s: {stderr[-2000:]}")
    return Measurement(
        wall_seconds=wall,
        cpu_seconds=usage.ru_utime + usage.ru_stime,
        peak_rss_mb=sampler.peak_kb / 1024,
        total_rss_mb=sampler.total_kb / 1024,
        returncode=process.returncode,
        stdout=stdout,
        stderr=stderr,
    )


class _MemorySampler:
    """Follow a process tree's memory from /proc until told to stop."""

    def __init__(self, pid: int, finished: threading.Event) -> None:
        self.pid = pid
        self.finished = finished
        self.peak_kb = 0
        self.total_kb = 0

    def run(self) -> None:
        """Sample every SAMPLE_SECONDS until the finished event is set."""
        while True:
            self.sample()
            if self.finished.wait(SAMPLE_SECONDS):
                return

    def sample(self) -> None:
        """Read VmHWM and VmRSS of the root and its descendants once."""
        try:
            root = psutil.Process(self.pid)
            tree = [root, *root.children(recursive=True)]
        except psutil.Error:
            return
        total = 0
        for process in tree:
            fields = _status_fields(process.pid)
            self.peak_kb = max(self.peak_kb, fields.get("VmHWM", 0))
            total += fields.get("VmRSS", 0)
        self.total_kb = max(self.total_kb, total)


def _status_fields(pid: int) -> dict[str, int]:
    """Given a pid, return its /proc status memory fields in kB (empty once it is gone)."""
    fields: dict[str, int] = {}
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return fields
    for line in lines:
        name, _, value = line.partition(":")
        if name in ("VmHWM", "VmRSS"):
            fields[name] = int(value.split()[0])
    return fields
