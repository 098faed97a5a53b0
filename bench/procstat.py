"""Read what one running process costs: CPU seconds so far and its memory from /proc."""

from __future__ import annotations

import threading
from pathlib import Path
from types import TracebackType

import psutil  # type: ignore[import-untyped]

SAMPLE_SECONDS = 0.02


def cpu_seconds(pid: int) -> float:
    """Given a pid, return its user plus system CPU seconds so far (its threads included)."""
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def memory_kb(pid: int) -> dict[str, int]:
    """Given a pid, return its VmHWM (the kernel's peak resident set) and VmRSS in kB.
    Raise FileNotFoundError when the process is gone."""
    fields: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmHWM", "VmRSS"):
            fields[name] = int(value.split()[0])
    return fields


class MemoryWatch:
    """Sample one process's VmHWM and VmRSS every SAMPLE_SECONDS while the block runs.

    VmHWM is kept by the kernel, so the last sample is the process's true peak so far;
    the samples add the largest VmRSS seen, which a sampler can miss between reads.
    """

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_kb = 0
        self.max_rss_kb = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> MemoryWatch:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()

    def sample(self) -> None:
        """Read the process's memory once (nothing when it is gone)."""
        try:
            fields = memory_kb(self.pid)
        except OSError:
            return
        self.samples += 1
        self.peak_kb = max(self.peak_kb, fields.get("VmHWM", 0))
        self.max_rss_kb = max(self.max_rss_kb, fields.get("VmRSS", 0))

    def _run(self) -> None:
        while True:
            self.sample()
            if self._stop.wait(SAMPLE_SECONDS):
                return
