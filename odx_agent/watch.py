"""Notice changes in watch folders: inotify through watchdog where it works.

The watcher only says "something changed in drop X of watch W"; what changed is decided by
scanning the folder (``odx_agent.drops``). Events are hints: a periodic rescan stays on
because inotify misses writes made over NFS/SMB and everything that happened while the
daemon was down. When the system's inotify limits are reached, the watch falls back to
polling and the caller is told.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import structlog
from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class WatchedFolder:
    name: str
    path: Path
    mode: str  # "auto" or "poll"


class _Handler(FileSystemEventHandler):
    def __init__(self, watch: WatchedFolder, on_change: Callable[[str, str], None]) -> None:
        self._watch = watch
        self._root = str(watch.path).rstrip("/") + "/"
        self._on_change = on_change

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in ("opened", "closed_no_write"):
            return
        for raw in (event.src_path, getattr(event, "dest_path", "")):
            path = raw.decode() if isinstance(raw, bytes) else raw
            if path.startswith(self._root):
                drop = path[len(self._root) :].split("/", 1)[0]
                if drop and not drop.startswith("."):
                    self._on_change(self._watch.name, drop)


class FolderWatcher:
    """Watch folders for changes; call ``on_change(watch, drop)`` from a watchdog thread.

    ``polled`` holds the watches that are polled (configured so, or fallen back).
    """

    def __init__(
        self,
        on_change: Callable[[str, str], None],
        *,
        observer_factory: Callable[[], BaseObserver] = Observer,
    ) -> None:
        self._on_change = on_change
        self._observer_factory = observer_factory
        self._observer: BaseObserver | None = None
        self._lock = threading.Lock()
        self.polled: set[str] = set()

    def start(self, watches: Iterable[WatchedFolder]) -> None:
        """Begin watching; safe to call again after ``stop`` (on reload)."""
        watches = list(watches)
        with self._lock:
            observer = self._observer_factory()
            observer.daemon = True
            self.polled = set()
            for watch in watches:
                if watch.mode == "poll":
                    self.polled.add(watch.name)
                    continue
                try:
                    observer.schedule(
                        _Handler(watch, self._on_change), str(watch.path), recursive=True
                    )
                except OSError as error:
                    # ENOSPC from inotify_add_watch: the system's watch limit is reached
                    log.warning(
                        "inotify unavailable, polling instead",
                        watch=watch.name,
                        reason=str(error),
                        hint="raise fs.inotify.max_user_watches",
                    )
                    self.polled.add(watch.name)
            try:
                observer.start()
            except OSError as error:
                log.warning("inotify unavailable, polling every watch", reason=str(error))
                self.polled = {watch.name for watch in watches}
                return
            self._observer = observer

    def stop(self) -> None:
        with self._lock:
            observer, self._observer = self._observer, None
        if observer is not None:
            observer.stop()
            observer.join(timeout=5)
