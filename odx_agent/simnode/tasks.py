"""The simulated node's task model and its persistence.

A task starts as an upload session (``committed`` False) created by ``/task/new/init``,
becomes a processing task at commit, and is saved with every other task as one JSON
document under the node's data folder, written atomically so a crash never leaves a
half-written state behind.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from enum import IntEnum
from pathlib import Path
from typing import Any

STATE_FILE = "tasks.json"


class Status(IntEnum):
    """Task status codes as NodeODX reports them."""

    QUEUED = 10
    RUNNING = 20
    FAILED = 30
    COMPLETED = 40
    CANCELED = 50


FINAL_STATUSES = frozenset({Status.FAILED, Status.COMPLETED, Status.CANCELED})


class NodeError(Exception):
    """A request the node refuses; ``body`` is the JSON answer it sends (HTTP 200)."""

    def __init__(self, message: str, *, no_retry: bool = False) -> None:
        super().__init__(message)
        self.body: dict[str, Any] = {"error": message}
        if no_retry:
            self.body["noRetry"] = True


@dataclass
class Task:
    """One task the node holds, committed or still receiving uploads."""

    uuid: str
    name: str
    date_created: int
    options: list[dict[str, Any]]
    webhook: str = ""
    skip_post_processing: bool = False
    outputs: list[str] | None = None
    committed: bool = False
    status: Status = Status.QUEUED
    progress: int = 0
    processing_time: int = -1
    images: list[str] = field(default_factory=list)
    queue_order: int = 0
    # Monotonic time processing started; never saved, a reload restarts the run.
    started_at: float | None = None

    def info(self) -> dict[str, Any]:
        """Return the ``/task/{uuid}/info`` answer, fields in the node's order."""
        return {
            "uuid": self.uuid,
            "name": self.name,
            "dateCreated": self.date_created,
            "processingTime": self.processing_time,
            "status": {"code": int(self.status)},
            "options": self.options,
            "imagesCount": len(self.images),
            "progress": self.progress,
        }

    def to_json(self) -> dict[str, Any]:
        """Return the task as a JSON-compatible dictionary for the state file."""
        saved = asdict(self)
        saved.pop("started_at")
        saved["status"] = int(self.status)
        return saved

    @classmethod
    def from_json(cls, saved: dict[str, Any]) -> Task:
        """Given a dictionary from the state file, return the task it describes."""
        fields = dict(saved)
        fields["status"] = Status(fields["status"])
        return cls(**fields)


def load_tasks(data_dir: Path) -> list[Task]:
    """Given the node's data folder, return the saved tasks (none when nothing is saved)."""
    path = data_dir / STATE_FILE
    if not path.exists():
        return []
    return [Task.from_json(saved) for saved in json.loads(path.read_text(encoding="utf-8"))]


def save_tasks(data_dir: Path, tasks: list[Task]) -> None:
    """Given the node's data folder and every task, write the state file atomically."""
    data = json.dumps([task.to_json() for task in tasks]).encode("utf-8")
    handle, temporary = tempfile.mkstemp(dir=data_dir, prefix=".tasks-", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        Path(temporary).replace(data_dir / STATE_FILE)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
