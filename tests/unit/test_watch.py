"""The folder watcher: real inotify events, and the fall-back to polling."""

from __future__ import annotations

import errno
import threading
from pathlib import Path
from typing import Any

from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver

from odx_agent.watch import FolderWatcher, WatchedFolder
from tests.support.agenttest import wait_for


def test_changes_inside_a_drop_are_reported_by_drop(tmp_path: Path) -> None:
    seen: set[tuple[str, str]] = set()
    lock = threading.Lock()

    def record(watch: str, drop: str) -> None:
        with lock:
            seen.add((watch, drop))

    watcher = FolderWatcher(record)
    watcher.start([WatchedFolder("farm", tmp_path, "auto")])
    try:
        (tmp_path / "flight-1" / "sub").mkdir(parents=True)
        (tmp_path / "flight-1" / "sub" / "A.JPG").write_bytes(b"a")
        (tmp_path / ".done").mkdir()
        (tmp_path / ".done" / "x").write_bytes(b"x")
        wait_for(lambda: ("farm", "flight-1") in seen, timeout=10)
    finally:
        watcher.stop()
    assert watcher.polled == set()
    assert {drop for _watch, drop in seen} == {"flight-1"}


def full_inotify() -> BaseObserver:
    observer = Observer()

    def refuse(*_args: Any, **_kwargs: Any) -> Any:
        raise OSError(errno.ENOSPC, "inotify watch limit reached")

    observer.schedule = refuse
    return observer


def test_inotify_limit_falls_back_to_polling(tmp_path: Path) -> None:
    watcher = FolderWatcher(lambda _w, _d: None, observer_factory=full_inotify)
    watcher.start([WatchedFolder("farm", tmp_path, "auto"), WatchedFolder("nfs", tmp_path, "poll")])
    watcher.stop()
    assert watcher.polled == {"farm", "nfs"}
