"""Benchmarks of the agent daemon: placeholder sections until implemented below."""

from __future__ import annotations

from bench.report import Section


def detect_section(drops: int, repeat: int) -> Section:
    return Section(
        name="detect", title="pending", columns=["watcher", "status"], rows=[["-", "pending"]]
    )


def e2e_section(drops: int) -> Section:
    return Section(
        name="e2e", title="pending", columns=["runner", "status"], rows=[["-", "pending"]]
    )


def idle_section() -> Section:
    return Section(
        name="idle", title="pending", columns=["figure", "status"], rows=[["-", "pending"]]
    )
