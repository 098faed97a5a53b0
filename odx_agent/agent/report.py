"""The report file ``odx-report.json`` written beside every drop's results."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from odx_agent.atomicfile import write_atomically
from odx_agent.store import Drop
from odx_agent.timestamps import iso

REPORT_NAME = "odx-report.json"
SCHEMA_VERSION = 1


def _span(start: float | None, end: float | None) -> float | None:
    if start is None or end is None:
        return None
    return round(max(0.0, end - start), 3)


def timings(drop: Drop) -> dict[str, float | None]:
    """Given a drop, return the seconds it spent in each stage (None: not reached)."""
    return {
        "wait": _span(drop.seen_at, drop.ready_at),
        "queue": _span(drop.ready_at, drop.upload_started_at),
        "upload": _span(drop.upload_started_at, drop.committed_at),
        "processing": _span(drop.committed_at, drop.node_finished_at),
        "download": _span(drop.download_started_at, drop.finished_at),
    }


def build_report(drop: Drop, *, node_output_tail: list[str] | None = None) -> dict[str, Any]:
    """Given a drop record, return the report's content (keys are a public contract)."""
    return {
        "schema_version": SCHEMA_VERSION,
        "drop": drop.name,
        "watch": drop.watch,
        "attempt": drop.attempt,
        "state": drop.state.value,
        "task_uuid": drop.task_uuid,
        "node": drop.node,
        "options": drop.options,
        "images": drop.images or 0,
        "files": drop.files,
        "ignored": drop.ignored,
        "created_at": iso(drop.created_at),
        "finished_at": iso(drop.finished_at),
        "timings": timings(drop),
        "error": drop.error,
        "node_output_tail": list(node_output_tail or []),
    }


def write_report(folder: Path, report: dict[str, Any]) -> Path:
    """Write ``report`` into ``folder`` atomically (temporary name, fsync, rename)."""
    target = folder / REPORT_NAME
    data = json.dumps(report, indent=2, sort_keys=False).encode() + b"\n"
    write_atomically(target, data, mode=0o640)
    return target


def read_report(folder: Path) -> dict[str, Any] | None:
    """Return the report in ``folder``, or None when there is none readable."""
    try:
        with open(folder / REPORT_NAME, "rb") as handle:
            loaded = json.load(handle)
    except (OSError, ValueError):
        return None
    return loaded if isinstance(loaded, dict) else None
