"""The state file: schema, transitions in one transaction, permissions, the instance lock."""

from __future__ import annotations

import contextlib
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from odx_agent.states import ALLOWED_TRANSITIONS, DropState, TransitionError
from odx_agent.store import _MIGRATIONS, SCHEMA_VERSION, InstanceLock, Store, StoreError


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store.open(tmp_path / "state.sqlite")
    yield opened
    opened.close()


def test_new_state_file_is_private_wal_and_versioned(tmp_path: Path, store: Store) -> None:
    path = tmp_path / "state.sqlite"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert store.integrity_check() == "ok"


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    Store.open(path).close()
    with sqlite3.connect(path) as raw:
        raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StoreError, match="upgrade odx-agent"):
        Store.open(path)


def test_not_a_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="cannot use state file"):
        Store.open(path)


def test_transitions_follow_the_table_and_keep_fields(store: Store) -> None:
    drop = store.add_drop(watch="w", name="d", path="/x/d", now=100.0, fingerprint="f")
    assert drop.state == DropState.WAITING
    before, after = store.transition(drop.id, DropState.READY, now=101.0, ready_at=101.0)
    assert (before.state, after.state, after.ready_at, after.updated_at) == (
        DropState.WAITING,
        DropState.READY,
        101.0,
        101.0,
    )
    with pytest.raises(TransitionError, match="from ready to completed"):
        store.transition(drop.id, DropState.COMPLETED, now=102.0)
    assert store.get(drop.id).state == DropState.READY  # nothing written


def test_every_state_can_reach_a_final_state() -> None:
    for state, targets in ALLOWED_TRANSITIONS.items():
        if state not in (DropState.COMPLETED, DropState.FAILED, DropState.CANCELED):
            assert DropState.FAILED in targets or DropState.CANCELED in targets, state


def test_only_one_active_drop_per_folder(store: Store) -> None:
    store.add_drop(watch="w", name="d", path="/x/d", now=1.0)
    with pytest.raises(sqlite3.IntegrityError):
        store.add_drop(watch="w", name="d", path="/x/d", now=2.0)


def test_folder_marks_and_counts(store: Store) -> None:
    first = store.add_drop(watch="w", name="d", path="/x/d", now=1.0)
    store.transition(first.id, DropState.FAILED, now=2.0, error="bad")
    second = store.add_drop(watch="w", name="d", path="/x/d", now=3.0)
    store.add_drop(watch="w", name="e", path="/x/e", now=4.0)
    marks = store.folder_marks("w")
    assert {name: (mark.id, mark.state) for name, mark in marks.items()} == {
        "d": (second.id, DropState.WAITING),
        "e": (3, DropState.WAITING),
    }
    assert store.folder_marks("w", ["d"]) == {"d": marks["d"]}
    assert store.folder_marks("other") == {}
    assert store.counts() == {("w", "failed"): 1, ("w", "waiting"): 2}


def test_uploaded_files_are_recorded_once(store: Store) -> None:
    drop = store.add_drop(watch="w", name="d", path="/x/d", now=1.0)
    store.record_uploaded(drop.id, "u1", "a.jpg")
    store.record_uploaded(drop.id, "u1", "a.jpg")
    store.record_uploaded(drop.id, "u2", "b.jpg")
    assert store.uploaded(drop.id, "u1") == {"a.jpg"}
    store.forget_uploads(drop.id)
    assert store.uploaded(drop.id, "u2") == set()


def test_notifications_wait_until_delivered_then_are_removed(store: Store) -> None:
    drop = store.add_drop(watch="w", name="d", path="/x/d", now=1.0)
    store.enqueue_notification(drop.id, "completed", {"kind": "webhook"}, {"a": 1}, now=10.0)
    (due,) = store.due_notifications(10.0)
    store.notification_failed(due.id, error="500", retry_at=20.0)
    assert store.due_notifications(15.0) == []
    (again,) = store.due_notifications(20.0)
    assert (again.attempts, again.last_error, again.payload) == (1, "500", {"a": 1})
    assert again.created_at == 10.0
    store.forget_notification(again.id)
    assert store.pending_notifications() == []
    with sqlite3.connect(store.path) as raw:
        assert raw.execute("SELECT COUNT(*) FROM notifications").fetchone() == (0,)


def test_schema_3_file_is_migrated_and_loses_its_delivered_notifications(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.sqlite"
    with contextlib.closing(sqlite3.connect(path)) as raw, raw:
        for script in _MIGRATIONS[:3]:
            raw.executescript(script)
        raw.execute("PRAGMA user_version = 3")
        raw.execute(
            "INSERT INTO drops (watch, name, path, state, created_at, updated_at) "
            "VALUES ('w', 'd', '/x/d', 'completed', 1.0, 2.0)"
        )
        for delivered_at, next_attempt_at in ((30.0, 25.0), (None, 40.0)):
            raw.execute(
                "INSERT INTO notifications (drop_id, event, target, payload, next_attempt_at,"
                " delivered_at) VALUES (1, 'completed', '{}', '{}', ?, ?)",
                (next_attempt_at, delivered_at),
            )
    migrated = Store.open(path)
    try:
        (pending,) = migrated.pending_notifications()
        assert (pending.next_attempt_at, pending.created_at) == (40.0, 40.0)
        assert migrated.get(1).state == DropState.COMPLETED
    finally:
        migrated.close()
    with contextlib.closing(sqlite3.connect(path)) as raw:
        assert raw.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
        assert raw.execute("SELECT COUNT(*) FROM notifications").fetchone() == (1,)


def test_instance_lock_is_exclusive(tmp_path: Path) -> None:
    first = InstanceLock(tmp_path / "state.sqlite.lock")
    first.acquire()
    second = InstanceLock(tmp_path / "state.sqlite.lock")
    with pytest.raises(StoreError, match="already running"):
        second.acquire()
    first.release()
    second.acquire()
    second.release()
