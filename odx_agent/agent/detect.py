"""Finding drops and deciding when each is ready.

A look at one drop folder compares what is there with what the state file knows: a new
folder becomes a ``waiting`` drop; a waiting drop that settled becomes ``ready`` (or fails,
when it is unusable); a finished drop whose marker was written anew becomes a new version;
a finished drop of a settle-only watch that changes is reported, not processed again.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import structlog

from odx_agent.agent.lifecycle import drop_log
from odx_agent.agent.runtime import Runtime
from odx_agent.config import WatchConfig
from odx_agent.drops import DropSnapshot, Verdict, decide, scan_drop
from odx_agent.states import DropState
from odx_agent.store import Drop, FolderMark

log = structlog.get_logger(__name__)


def drop_folders(watch_path: Path) -> set[str]:
    """Return the names of a watch's drops: its immediate, non-hidden, real sub-folders."""
    names: set[str] = set()
    with os.scandir(watch_path) as entries:
        for entry in entries:
            if not entry.name.startswith(".") and entry.is_dir(follow_symlinks=False):
                names.add(entry.name)
    return names


class Detector:
    """Looks at drop folders and moves drops from nothing to ``waiting`` to ``ready``."""

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime

    def scan(self, watch: WatchConfig, names: set[str] | None = None) -> None:
        """Look at every drop of ``watch`` (a full rescan), or only at ``names``."""
        try:
            present = drop_folders(watch.path)
        except OSError as error:
            self._runtime.metrics.error("input")
            log.exception("cannot list the watch folder", watch=watch.name, error=str(error))
            return
        marks = self._runtime.store.folder_marks(watch.name, names)
        for name in sorted(present if names is None else names):
            mark = marks.get(name)
            if name in present:
                self.look(watch, name, mark, full=names is None)
            elif mark is not None:
                self._vanished(mark)
        if names is None:
            for name, mark in marks.items():
                if name not in present:
                    self._vanished(mark)

    def look(
        self, watch: WatchConfig, name: str, mark: FolderMark | None, *, full: bool = True
    ) -> None:
        """Look at one drop folder of ``watch`` (whose newest drop is ``mark``) and record
        what changed."""
        runtime = self._runtime
        folder = watch.path / name
        marker = watch.ready.marker
        drop: Drop | None = None
        if mark is not None and mark.final:
            if not self._new_version(watch, folder, mark, full=full):
                return
        elif mark is not None:
            if mark.state not in (DropState.WAITING, DropState.READY):
                return  # the upload reads the folder itself
            drop = runtime.store.get(mark.id)
        try:
            snapshot = scan_drop(folder, marker)
        except (FileNotFoundError, NotADirectoryError):
            if mark is not None:
                self._vanished(mark)
            return
        now = runtime.clock()
        fingerprint = snapshot.fingerprint()
        marker_mtime = snapshot.marker.mtime_ns if snapshot.marker else None
        if drop is None:
            drop = runtime.store.add_drop(
                watch=watch.name,
                name=name,
                path=str(folder),
                now=now,
                fingerprint=fingerprint,
                marker_mtime_ns=marker_mtime,
                images=len(snapshot.images),
                ignored=list(snapshot.ignored),
            )
            drop_log(drop).info("drop seen", images=len(snapshot.images))
        elif fingerprint != drop.fingerprint or marker_mtime != drop.marker_mtime_ns:
            drop = runtime.store.update(
                drop.id,
                now=now,
                fingerprint=fingerprint,
                marker_mtime_ns=marker_mtime,
                changed_at=now,
                images=len(snapshot.images),
                ignored=list(snapshot.ignored),
            )
            if drop.state == DropState.READY:
                drop = runtime.lifecycle.move(drop, DropState.WAITING)
        self._judge(watch, drop, snapshot)

    def _judge(self, watch: WatchConfig, drop: Drop, snapshot: DropSnapshot) -> None:
        if drop.state != DropState.WAITING:
            return
        runtime = self._runtime
        now = runtime.clock()
        decision = decide(
            snapshot,
            marker=watch.ready.marker,
            settle_seconds=watch.ready.settle_seconds,
            min_images=watch.ready.min_images,
            now=now,
            last_change=drop.changed_at or drop.created_at,
        )
        if decision.verdict == Verdict.GO:
            runtime.lifecycle.move(drop, DropState.READY, error=None, next_attempt_at=None)
        elif decision.verdict == Verdict.FAIL:
            runtime.metrics.error("input")
            runtime.lifecycle.move(drop, DropState.FAILED, error=decision.reason)
        else:
            problem = None if decision.reason.startswith("waiting") else decision.reason
            if problem != drop.error or decision.recheck_at != drop.next_attempt_at:
                if problem and problem != drop.error:
                    drop_log(drop).warning("drop not usable yet", reason=problem)
                runtime.store.update(
                    drop.id, now=now, error=problem, next_attempt_at=decision.recheck_at
                )

    def _new_version(
        self, watch: WatchConfig, folder: Path, mark: FolderMark, *, full: bool
    ) -> bool:
        """Return whether a finished drop's folder now holds a new version to process."""
        marker = watch.ready.marker
        if marker is not None:
            try:
                info = os.lstat(folder / marker)
            except OSError:
                return False
            return stat.S_ISREG(info.st_mode) and info.st_mtime_ns != mark.marker_mtime_ns
        if mark.changed_after_finish or (not full and mark.state != DropState.CANCELED):
            return False  # settle-only: compare contents on full rescans only (cheap events)
        try:
            fingerprint = scan_drop(folder, None).fingerprint()
        except OSError:
            return False
        if fingerprint != mark.fingerprint and mark.state == DropState.CANCELED:
            return True  # canceled before upload (e.g. removed), now back: a new drop
        if fingerprint != mark.fingerprint:
            drop = self._runtime.store.update(
                mark.id, now=self._runtime.clock(), changed_after_finish=True
            )
            drop_log(drop).warning(
                "a finished drop changed; it is not processed again (use retry to do so)"
            )
        return False

    def _vanished(self, mark: FolderMark) -> None:
        if mark.state in (DropState.WAITING, DropState.READY):
            self._runtime.lifecycle.move(
                self._runtime.store.get(mark.id),
                DropState.CANCELED,
                error="the drop folder was removed before upload",
            )
