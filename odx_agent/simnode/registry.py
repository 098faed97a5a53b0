"""Every task the simulated node holds, behind one lock, with the node's rules.

The registry owns the upload sessions, the processing queue and the state file. Task
progress is a pure function of the injected monotonic clock: each call first advances
the tasks to "now", so answers depend on elapsed time only, never on a timer's luck.
"""

from __future__ import annotations

import shutil
import threading
import time
import uuid as uuid_module
from collections.abc import Callable
from pathlib import Path
from typing import Any

from odx_agent.simnode.tasks import (
    FINAL_STATUSES,
    NodeError,
    Status,
    Task,
    load_tasks,
    save_tasks,
)
from odx_agent.simnode.validate import with_defaults

# Files the node moves to the task's GCP folder instead of counting them as images.
_ASIDE_NAMES = frozenset({"align.las", "align.laz", "align.tif"})


def is_aside_file(name: str) -> bool:
    """Given an uploaded file name, return True when the node sets it aside (not an image)."""
    lowered = name.lower()
    return lowered.endswith(".txt") or lowered in _ASIDE_NAMES


class TaskRegistry:
    """Given a data folder and the processing settings, hold and persist every task."""

    def __init__(
        self,
        data_dir: Path,
        *,
        processing_seconds: float,
        fail_tasks: bool,
        max_images: int | None,
        max_parallel_tasks: int,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._data_dir = data_dir
        self._processing_seconds = max(0.0, processing_seconds)
        self._fail_tasks = fail_tasks
        self._max_images = max_images
        self._max_parallel = max(1, max_parallel_tasks)
        self._clock = clock
        self._wall_clock = wall_clock
        self._lock = threading.Lock()
        self._finished: list[Task] = []
        data_dir.mkdir(parents=True, exist_ok=True)
        self._tasks: dict[str, Task] = {task.uuid: task for task in load_tasks(data_dir)}
        for task in self._tasks.values():
            if task.status == Status.RUNNING:
                # As the real node does: a run cut short by a stop starts again from zero.
                self._reset_run(task)
        with self._lock:
            self._advance()

    # Upload sessions -------------------------------------------------------------------

    def init(self, requested_uuid: str | None, fields: dict[str, Any]) -> str:
        """Given an optional client-chosen UUID and the checked init fields, create or
        renew an upload session and return its UUID. Raise NodeError when the UUID
        belongs to a committed task."""
        with self._lock:
            task_uuid = requested_uuid or str(uuid_module.uuid4())
            existing = self._tasks.get(task_uuid)
            if existing is not None and existing.committed:
                raise NodeError(f"Invalid set-uuid: {task_uuid}")
            date_created = fields.get("date_created") or int(self._wall_clock() * 1000)
            task = Task(
                uuid=task_uuid,
                name=fields.get("name") or "",
                date_created=date_created,
                options=with_defaults(fields.get("options") or []),
                webhook=fields.get("webhook") or "",
                skip_post_processing=bool(fields.get("skip_post_processing")),
                outputs=fields.get("outputs"),
            )
            self.images_dir(task_uuid).mkdir(parents=True, exist_ok=True)
            self._tasks[task_uuid] = task
            self._save()
            return task_uuid

    def images_dir(self, task_uuid: str) -> Path:
        """Given a task UUID (already validated), return the folder its uploads go to."""
        return self._data_dir / task_uuid / "images"

    def upload_dir(self, task_uuid: str) -> Path:
        """Given a UUID, return the upload folder of its open session. Raise NodeError
        when no upload session has that UUID."""
        with self._lock:
            task = self._tasks.get(task_uuid)
            if task is None or task.committed:
                raise NodeError("Invalid uuid (not found)")
            return self.images_dir(task_uuid)

    def commit(self, task_uuid: str) -> None:
        """Given a UUID, turn its upload session into a task that runs or waits. Raise
        NodeError for an unknown session, no images or too many images."""
        with self._lock:
            task = self._tasks.get(task_uuid)
            if task is None or task.committed:
                raise NodeError("Invalid uuid (not found)")
            images_dir = self.images_dir(task_uuid)
            names = sorted(path.name for path in images_dir.iterdir() if path.is_file())
            images = [name for name in names if not is_aside_file(name)]
            if not names:
                raise NodeError("Need at least 1 file.")
            if self._max_images is not None and len(images) > self._max_images:
                raise NodeError(
                    f"{len(images)} images uploaded, but this node can only process up to "
                    f"{self._max_images}."
                )
            gcp_dir = self._data_dir / task_uuid / "gcp"
            gcp_dir.mkdir(exist_ok=True)
            for name in names:
                if is_aside_file(name):
                    (images_dir / name).replace(gcp_dir / name)
            task.images = images
            task.committed = True
            self._enqueue(task)
            self._advance()
            self._save()

    # Reading ---------------------------------------------------------------------------

    def find(self, task_uuid: str) -> Task:
        """Given a UUID, return a copy of its committed task as of now. Raise NodeError
        ``<uuid> not found`` when there is none."""
        with self._lock:
            self._advance()
            return _copy(self._committed(task_uuid))

    def committed_tasks(self) -> list[Task]:
        """Return copies of every committed task as of now, oldest first."""
        with self._lock:
            self._advance()
            return [_copy(task) for task in self._tasks.values() if task.committed]

    def take_finished(self) -> list[Task]:
        """Advance to now and return the tasks whose processing ended since the last call."""
        with self._lock:
            self._advance()
            finished, self._finished = self._finished, []
            return finished

    # Commands --------------------------------------------------------------------------

    def cancel(self, task_uuid: str) -> None:
        """Given a UUID, cancel its task. Raise NodeError when it is unknown."""
        with self._lock:
            self._advance()
            task = self._committed(task_uuid)
            if task.status != Status.CANCELED:
                task.status = Status.CANCELED
                task.started_at = None
                self._advance()
                self._save()

    def remove(self, task_uuid: str) -> None:
        """Given a UUID, cancel its task and delete it with its files. Raise NodeError
        when it is unknown."""
        with self._lock:
            self._committed(task_uuid)
            del self._tasks[task_uuid]
            self._advance()
            self._save()
        shutil.rmtree(self._data_dir / task_uuid, ignore_errors=True)

    def restart(self, task_uuid: str, options: list[dict[str, Any]] | None) -> None:
        """Given a UUID and optional new options, run a finished task again. Raise
        NodeError when it is unknown or still queued or running."""
        with self._lock:
            self._advance()
            task = self._committed(task_uuid)
            if task.status not in FINAL_STATUSES:
                raise NodeError("Task cannot be restarted")
            if options is not None:
                task.options = with_defaults(options)
            task.date_created = int(self._wall_clock() * 1000)
            self._reset_run(task)
            self._enqueue(task)
            self._advance()
            self._save()

    # Internals (lock held) -------------------------------------------------------------

    def _committed(self, task_uuid: str) -> Task:
        task = self._tasks.get(task_uuid)
        if task is None or not task.committed:
            raise NodeError(f"{task_uuid} not found")
        return task

    def _enqueue(self, task: Task) -> None:
        task.status = Status.QUEUED
        task.queue_order = 1 + max((other.queue_order for other in self._tasks.values()), default=0)

    @staticmethod
    def _reset_run(task: Task) -> None:
        task.status = Status.QUEUED
        task.progress = 0
        task.processing_time = -1
        task.started_at = None

    def _advance(self) -> None:
        now = self._clock()
        changed = False
        running = [task for task in self._tasks.values() if task.status == Status.RUNNING]
        for task in running:
            started = now if task.started_at is None else task.started_at
            task.started_at = started
            elapsed = now - started
            if elapsed >= self._processing_seconds:
                task.status = Status.FAILED if self._fail_tasks else Status.COMPLETED
                task.progress = 100
                task.processing_time = round(self._processing_seconds * 1000)
                task.started_at = None
                self._finished.append(_copy(task))
                changed = True
            else:
                task.progress = min(99, int(100 * elapsed / self._processing_seconds))
                task.processing_time = int(elapsed * 1000) if task.progress > 0 else -1
        changed = self._start_queued(now) or changed
        if changed:
            self._save()

    def _start_queued(self, now: float) -> bool:
        running = sum(1 for task in self._tasks.values() if task.status == Status.RUNNING)
        queued = sorted(
            (
                task
                for task in self._tasks.values()
                if task.committed and task.status == Status.QUEUED
            ),
            key=lambda task: task.queue_order,
        )
        for task in queued[: max(0, self._max_parallel - running)]:
            task.status = Status.RUNNING
            task.started_at = now
        return bool(queued) and running < self._max_parallel

    def _save(self) -> None:
        save_tasks(self._data_dir, list(self._tasks.values()))


def _copy(task: Task) -> Task:
    return Task.from_json({**task.to_json(), "started_at": task.started_at})
