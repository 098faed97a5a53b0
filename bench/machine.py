"""Describe the machine a benchmark ran on, so its figures can be read in context."""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
from pathlib import Path

import psutil  # type: ignore[import-untyped]


def cpu_model() -> str:
    """Return the CPU model name from /proc/cpuinfo (or the platform's processor string)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def curl_version() -> str:
    """Return curl's first version line's first two words, or "not installed"."""
    try:
        out = subprocess.run(["curl", "--version"], capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return "not installed"
    return " ".join(out.stdout.split()[:2])


def describe_machine() -> list[tuple[str, str]]:
    """Return (label, value) pairs: CPU, cores, RAM, OS, Python, curl, the load average
    when the run began (other work on the machine skews wall times) and the date."""
    physical = psutil.cpu_count(logical=False)
    return [
        ("CPU", cpu_model()),
        ("cores", f"{os.cpu_count()} logical, {physical or '?'} physical"),
        ("RAM", f"{psutil.virtual_memory().total / 1024**3:.1f} GiB"),
        ("OS", f"{platform.system()} {platform.release()}"),
        ("Python", platform.python_version()),
        ("curl", curl_version()),
        ("load at start", "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg())),
        ("date", datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")),
    ]
