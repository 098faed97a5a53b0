"""Seed a state file with a long history of finished drops, through the store's own API.

Every drop is added as ``waiting`` and moved along the lifecycle one allowed transition at
a time (each its own transaction, as the daemon writes them), with the fields the daemon
would have written: task UUID, node, files, timestamps and, for the drops whose folders
still exist, the fingerprint and marker time read from the real folder, so a daemon
started on the file sees them as finished and leaves them alone.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

from odx_agent.drops import scan_drop
from odx_agent.states import DropState
from odx_agent.store import Drop, Store

DAY = 86_400.0
IMAGE_BYTES = 2_048
MARKER = ".ready"
NODE = "sim"
RETIRED_WATCH = "retired"
FAILED_EVERY = 10  # one finished drop in ten failed


@dataclass(frozen=True)
class SeededState:
    """What a seeded state file holds."""

    current: int  # latest rows whose drop folders exist, all completed
    earlier_versions: int  # older versions of those folders
    gone: int  # rows of the watch whose folders were removed since
    retired: int  # rows of a watch no longer configured

    @property
    def total(self) -> int:
        return self.current + self.earlier_versions + self.gone + self.retired


def write_drop_folder(folder: Path, index: int) -> None:
    """Given a folder and a number, write two small random images and the ready marker."""
    folder.mkdir(parents=True)
    for image in (1, 2):
        data = os.urandom(IMAGE_BYTES) + index.to_bytes(4, "big")
        (folder / f"IMG_{image:04d}.JPG").write_bytes(data)
    (folder / MARKER).write_text("")


def seed_state(
    store: Store,
    *,
    watch: str,
    watch_path: Path,
    output_path: Path,
    current: int,
    older: int,
    now: float,
) -> SeededState:
    """Given an empty store, a configured watch, its folders and two counts, write
    ``current`` drop folders with a completed row each (the newest rows) after ``older``
    finished rows (completed or failed) for earlier versions of those folders, for folders
    of the watch that are gone, and for a watch no longer configured; return the counts.

    Rows are spread over the 90 days before ``now``; ``older`` is split in three.
    """
    earlier = older // 3
    gone = older // 3
    retired = older - earlier - gone
    started = now - 90 * DAY
    step = (85 * DAY) / max(1, older)
    moment = started
    for index in range(older):
        moment = started + index * step
        if index < earlier:
            number = index % current
            name = f"drop-{number:04d}"
            _finish(store, watch, name, watch_path / name, output_path / name, index, moment)
        elif index < earlier + gone:
            name = f"old-{index:05d}"
            _finish(store, watch, name, watch_path / name, output_path / name, index, moment)
        else:
            name = f"flight-{index:05d}"
            folder = watch_path.parent / RETIRED_WATCH / name
            output = output_path.parent / RETIRED_WATCH / name
            _finish(store, RETIRED_WATCH, name, folder, output, index, moment)
    step = (4 * DAY) / max(1, current)
    for number in range(current):
        moment = now - 5 * DAY + number * step
        name = f"drop-{number:04d}"
        folder = watch_path / name
        write_drop_folder(folder, number)
        output = output_path / name
        output.mkdir(parents=True)
        (output / "odx-report.json").write_text(json.dumps({"drop": name, "state": "completed"}))
        snapshot = scan_drop(folder, MARKER)
        assert snapshot.marker is not None
        drop = _finish(
            store,
            watch,
            name,
            folder,
            output,
            older + number,
            moment,
            fingerprint=snapshot.fingerprint(),
            marker_mtime_ns=snapshot.marker.mtime_ns,
            files=[entry.relative for entry in snapshot.uploads],
            completed=True,
        )
        assert drop.state == DropState.COMPLETED
    return SeededState(current=current, earlier_versions=earlier, gone=gone, retired=retired)


def _finish(
    store: Store,
    watch: str,
    name: str,
    folder: Path,
    output: Path,
    index: int,
    moment: float,
    *,
    fingerprint: str | None = None,
    marker_mtime_ns: int | None = None,
    files: list[str] | None = None,
    completed: bool | None = None,
) -> Drop:
    """Add one drop and move it, transition by transition, to completed or failed."""
    files = files or ["IMG_0001.JPG", "IMG_0002.JPG"]
    fingerprint = fingerprint or hashlib.sha256(f"{watch}/{name}/{index}".encode()).hexdigest()[:32]
    marker_mtime_ns = marker_mtime_ns or int(moment * 1e9)
    if completed is None:
        completed = index % FAILED_EVERY != 0
    drop = store.add_drop(
        watch=watch,
        name=name,
        path=str(folder),
        now=moment,
        fingerprint=fingerprint,
        marker_mtime_ns=marker_mtime_ns,
        images=len(files),
        ignored=[],
    )
    if not completed and index % (2 * FAILED_EVERY) == 0:
        # unusable input fails before any upload
        _, drop = store.transition(
            drop.id,
            DropState.FAILED,
            now=moment + 5,
            error="too few images: 1 found, at least 2 needed",
            finished_at=moment + 5,
        )
        return drop
    task_uuid = str(uuid.UUID(int=index + 1))
    moves: list[tuple[DropState, float, dict[str, object]]] = [
        (DropState.READY, 5, {"ready_at": moment + 5}),
        (
            DropState.UPLOADING,
            6,
            {
                "task_uuid": task_uuid,
                "node": NODE,
                "options": {"fast-orthophoto": True},
                "files": files,
                "commit_sent": False,
                "upload_started_at": moment + 6,
            },
        ),
        (DropState.PROCESSING, 8, {"commit_sent": True, "committed_at": moment + 8}),
    ]
    if completed:
        moves += [
            (
                DropState.DOWNLOADING,
                600,
                {"node_finished_at": moment + 600, "download_started_at": moment + 600},
            ),
            (DropState.COMPLETED, 603, {"output": str(output), "finished_at": moment + 603}),
        ]
    else:
        moves.append(
            (
                DropState.FAILED,
                300,
                {
                    "error": f"processing failed on node {NODE}: not enough overlap",
                    "output": str(output),
                    "finished_at": moment + 300,
                },
            )
        )
    for state, offset, fields in moves:
        _, drop = store.transition(drop.id, state, now=moment + offset, **fields)
    return drop
