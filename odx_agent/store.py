"""The state file: every drop, every uploaded file and every pending notification, in SQLite.

All SQL of the project lives in this module. Every write goes through ``_transaction`` (one
``BEGIN IMMEDIATE`` each), and every state change goes through ``transition``, which checks
the move against ``odx_agent.states`` inside the same transaction. The file is opened in WAL
mode with ``synchronous=FULL`` so a committed transition survives a power cut, and it is
created 0600 because it names folders and tasks of other people.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sqlite3
import threading
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from odx_agent.states import ACTIVE_STATES, FINAL_STATES, DropState, check_transition

_MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE drops (
        id INTEGER PRIMARY KEY,
        watch TEXT NOT NULL,
        name TEXT NOT NULL,
        path TEXT NOT NULL,
        state TEXT NOT NULL,
        attempt INTEGER NOT NULL DEFAULT 1,
        fingerprint TEXT,
        marker_mtime_ns INTEGER,
        task_uuid TEXT,
        node TEXT,
        images INTEGER,
        files TEXT NOT NULL DEFAULT '[]',
        ignored TEXT NOT NULL DEFAULT '[]',
        options TEXT NOT NULL DEFAULT '{}',
        title TEXT,
        error TEXT,
        output TEXT,
        commit_sent INTEGER NOT NULL DEFAULT 0,
        resubmits INTEGER NOT NULL DEFAULT 0,
        transient_since REAL,
        next_attempt_at REAL,
        requested TEXT,
        changed_after_finish INTEGER NOT NULL DEFAULT 0,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        seen_at REAL,
        changed_at REAL,
        ready_at REAL,
        upload_started_at REAL,
        committed_at REAL,
        node_finished_at REAL,
        download_started_at REAL,
        finished_at REAL
    );
    CREATE UNIQUE INDEX drops_one_active_per_folder ON drops(watch, name)
        WHERE state NOT IN ('completed', 'failed', 'canceled');
    CREATE INDEX drops_by_folder ON drops(watch, name, id);
    CREATE INDEX drops_by_state ON drops(state);
    CREATE TABLE uploaded_files (
        drop_id INTEGER NOT NULL REFERENCES drops(id),
        task_uuid TEXT NOT NULL,
        name TEXT NOT NULL,
        PRIMARY KEY (drop_id, task_uuid, name)
    );
    CREATE TABLE notifications (
        id INTEGER PRIMARY KEY,
        drop_id INTEGER NOT NULL REFERENCES drops(id),
        event TEXT NOT NULL,
        target TEXT NOT NULL,
        payload TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at REAL NOT NULL,
        delivered_at REAL,
        last_error TEXT
    );
    CREATE INDEX notifications_due ON notifications(delivered_at, next_attempt_at);
    """,
    # the loop asks every second for operator requests: answer from an index, not a scan
    """
    CREATE INDEX drops_requested ON drops(id) WHERE requested IS NOT NULL;
    """,
    # every /metrics read and status line counts drops per watch and state: from an index
    """
    CREATE INDEX drops_by_watch_state ON drops(watch, state);
    """,
    # notifications are removed once delivered or given up (delivered_at stays unused: no
    # DROP COLUMN before SQLite 3.35); the age decides giving up
    """
    ALTER TABLE notifications ADD COLUMN created_at REAL;
    UPDATE notifications SET created_at = next_attempt_at;
    DELETE FROM notifications WHERE delivered_at IS NOT NULL;
    DROP INDEX notifications_due;
    CREATE INDEX notifications_by_due_time ON notifications(next_attempt_at);
    """,
)
SCHEMA_VERSION = len(_MIGRATIONS)

_JSON_FIELDS = frozenset({"files", "ignored", "options"})
_BOOL_FIELDS = frozenset({"commit_sent", "changed_after_finish"})
_UPDATABLE = frozenset(
    {
        "path", "attempt", "fingerprint", "marker_mtime_ns", "task_uuid", "node", "images",
        "files", "ignored", "options", "title", "error", "output", "commit_sent",
        "resubmits", "transient_since", "next_attempt_at", "requested",
        "changed_after_finish", "seen_at", "changed_at", "ready_at", "upload_started_at",
        "committed_at", "node_finished_at", "download_started_at", "finished_at",
    }
)  # fmt: skip


class StoreError(Exception):
    """The state file cannot be used (locked by another process, newer schema, corrupt)."""


@dataclass(frozen=True)
class Drop:
    """One version of one drop folder, as the state file holds it."""

    id: int
    watch: str
    name: str
    path: str
    state: DropState
    attempt: int
    fingerprint: str | None
    marker_mtime_ns: int | None
    task_uuid: str | None
    node: str | None
    images: int | None
    files: list[str]
    ignored: list[str]
    options: dict[str, Any]
    title: str | None
    error: str | None
    output: str | None
    commit_sent: bool
    resubmits: int
    transient_since: float | None
    next_attempt_at: float | None
    requested: str | None
    changed_after_finish: bool
    created_at: float
    updated_at: float
    seen_at: float | None
    changed_at: float | None  # when the daemon last saw the drop's files change
    ready_at: float | None
    upload_started_at: float | None
    committed_at: float | None
    node_finished_at: float | None
    download_started_at: float | None
    finished_at: float | None

    @property
    def final(self) -> bool:
        return self.state in FINAL_STATES


@dataclass(frozen=True)
class FolderMark:
    """What detection needs of a folder's newest drop: which one, its state, and the
    version it was made from."""

    id: int
    state: DropState
    fingerprint: str | None
    marker_mtime_ns: int | None
    changed_after_finish: bool

    @property
    def final(self) -> bool:
        return self.state in FINAL_STATES


@dataclass(frozen=True)
class Notification:
    """A notification waiting for delivery."""

    id: int
    drop_id: int
    event: str
    target: dict[str, Any]
    payload: dict[str, Any]
    attempts: int
    next_attempt_at: float
    last_error: str | None
    created_at: float


@dataclass
class InstanceLock:
    """An exclusive lock beside the state file, held while a daemon runs on it."""

    path: Path
    _fd: int | None = field(default=None, repr=False)

    def acquire(self) -> None:
        """Take the lock. Raise StoreError when another process holds it."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise StoreError(
                f"another odx-agent is already running on this state file (lock {self.path})"
            ) from None
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class Store:
    """A narrow interface over the state file. Safe to share between threads."""

    def __init__(self, connection: sqlite3.Connection, path: Path) -> None:
        self._connection = connection
        self._lock = threading.RLock()
        self._revision = 0
        self.path = path

    # -- opening ---------------------------------------------------------------------------

    @classmethod
    def open(cls, path: Path) -> Store:
        """Given a state file path, open (creating it 0600 if needed) and migrate it.

        Raise StoreError when the file belongs to a newer odx-agent or is not a database.
        """
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        try:
            connection = sqlite3.connect(
                path, timeout=30, isolation_level=None, check_same_thread=False
            )
            connection.row_factory = sqlite3.Row
            connection.execute("PRAGMA busy_timeout = 30000")
            connection.execute("PRAGMA journal_mode = WAL")
            connection.execute("PRAGMA synchronous = FULL")
            connection.execute("PRAGMA foreign_keys = ON")
            store = cls(connection, path)
            store._migrate()
        except sqlite3.DatabaseError as error:
            raise StoreError(f"cannot use state file {path}: {error}") from None
        return store

    def _migrate(self) -> None:
        with self._transaction() as cursor:
            version = cursor.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"state file {self.path} has schema {version}; this odx-agent knows "
                    f"{SCHEMA_VERSION}: upgrade odx-agent"
                )
            for script in _MIGRATIONS[version:]:
                for statement in filter(str.strip, script.split(";")):
                    cursor.execute(statement)
            cursor.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def close(self) -> None:
        with self._lock:
            self._connection.close()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Cursor]:
        with self._lock:
            cursor = self._connection.cursor()
            cursor.execute("BEGIN IMMEDIATE")
            try:
                yield cursor
            except BaseException:
                cursor.execute("ROLLBACK")
                raise
            cursor.execute("COMMIT")
            self._revision += 1

    # -- drops -----------------------------------------------------------------------------

    def add_drop(self, *, watch: str, name: str, path: str, now: float, **fields: Any) -> Drop:
        """Record a newly seen drop folder (state ``waiting``) and return it."""
        values = {
            "files": [],
            "ignored": [],
            "options": {},
            "seen_at": now,
            "changed_at": now,
            **fields,
        }
        columns = ["watch", "name", "path", "state", "created_at", "updated_at"]
        params: list[Any] = [watch, name, path, DropState.WAITING.value, now, now]
        for key, value in values.items():
            columns.append(_checked(key))
            params.append(_encode(key, value))
        sql = (
            f"INSERT INTO drops ({', '.join(columns)}) "  # noqa: S608 - columns are checked names
            f"VALUES ({', '.join('?' * len(params))})"
        )
        with self._transaction() as cursor:
            cursor.execute(sql, params)
            drop_id = cursor.lastrowid
        assert drop_id is not None
        return self.get(drop_id)

    def get(self, drop_id: int) -> Drop:
        """Return the drop with this id. Raise KeyError when there is none."""
        with self._lock:
            row = self._connection.execute(
                "SELECT * FROM drops WHERE id = ?", (drop_id,)
            ).fetchone()
        if row is None:
            raise KeyError(drop_id)
        return _drop(row)

    def find(self, drop_id: int) -> Drop | None:
        try:
            return self.get(drop_id)
        except KeyError:
            return None

    def active(self) -> list[Drop]:
        """Return every drop not in a final state, oldest first."""
        # IN over the active states (not NOT IN the final ones) lets SQLite use the index
        states = tuple(state.value for state in ACTIVE_STATES)
        placeholders = ", ".join("?" * len(states))
        return self._select(
            f"SELECT * FROM drops WHERE state IN ({placeholders}) ORDER BY id",  # noqa: S608
            states,
        )

    def all(self, limit: int | None = None) -> list[Drop]:
        """Return every drop, oldest first (the newest ``limit`` when given)."""
        if limit is None:
            return self._select("SELECT * FROM drops ORDER BY id", ())
        rows = self._select("SELECT * FROM drops ORDER BY id DESC LIMIT ?", (limit,))
        return rows[::-1]

    def folder_marks(
        self, watch: str, names: Collection[str] | None = None
    ) -> dict[str, FolderMark]:
        """Return, for each folder name of a watch (or only for ``names``), what detection
        needs to know of its newest drop. Rescans read this for every folder ever seen, so
        it reads a few columns, not whole records."""
        columns = "id, name, state, fingerprint, marker_mtime_ns, changed_after_finish"
        if names is None:
            sql = (
                f"SELECT {columns} FROM drops WHERE id IN "  # noqa: S608 - fixed text
                "(SELECT MAX(id) FROM drops WHERE watch = ? GROUP BY name)"
            )
            with self._lock:
                rows = self._connection.execute(sql, (watch,)).fetchall()
        else:
            sql = (
                f"SELECT {columns} FROM drops "  # noqa: S608 - fixed text
                "WHERE watch = ? AND name = ? ORDER BY id DESC LIMIT 1"
            )
            with self._lock:
                rows = [
                    row
                    for name in names
                    for row in self._connection.execute(sql, (watch, name)).fetchall()
                ]
        return {
            row["name"]: FolderMark(
                id=row["id"],
                state=DropState(row["state"]),
                fingerprint=row["fingerprint"],
                marker_mtime_ns=row["marker_mtime_ns"],
                changed_after_finish=bool(row["changed_after_finish"]),
            )
            for row in rows
        }

    def requested(self) -> list[Drop]:
        """Return drops an operator asked to retry or cancel."""
        return self._select("SELECT * FROM drops WHERE requested IS NOT NULL ORDER BY id", ())

    def _select(self, sql: str, params: tuple[Any, ...]) -> list[Drop]:
        with self._lock:
            rows = self._connection.execute(sql, params).fetchall()
        return [_drop(row) for row in rows]

    def update(self, drop_id: int, *, now: float, **fields: Any) -> Drop:
        """Change fields of a drop other than its state, in one transaction."""
        with self._transaction() as cursor:
            _write(cursor, drop_id, now, fields)
        return self.get(drop_id)

    def transition(
        self, drop_id: int, new_state: DropState, *, now: float, **fields: Any
    ) -> tuple[Drop, Drop]:
        """Move a drop to ``new_state`` and change ``fields`` in the same transaction.

        Return the drop before and after. Raise TransitionError for a move the lifecycle
        does not allow (nothing is written then).
        """
        with self._transaction() as cursor:
            row = cursor.execute("SELECT * FROM drops WHERE id = ?", (drop_id,)).fetchone()
            if row is None:
                raise KeyError(drop_id)
            before = _drop(row)
            check_transition(before.state, new_state)
            _write(cursor, drop_id, now, {**fields, "state": new_state})
        return before, self.get(drop_id)

    def request(self, drop_id: int, action: str, *, now: float) -> Drop:
        """Record an operator's request (``retry`` or ``cancel``) for the daemon to act on."""
        if action not in ("retry", "cancel"):
            raise ValueError(f"unknown request {action!r}")
        return self.update(drop_id, now=now, requested=action)

    @property
    def revision(self) -> int:
        """Return a number that changes whenever this process writes the state file."""
        return self._revision

    def status_rows(self, limit: int | None = None) -> list[dict[str, Any]]:
        """Return the columns ``status`` shows for every drop (the newest ``limit``), oldest
        first, without building whole drop records."""
        columns = (
            "id, watch, name, state, task_uuid, node, images, error, output, created_at, updated_at"
        )
        sql = f"SELECT {columns} FROM drops ORDER BY id DESC"  # noqa: S608 - fixed text
        params: tuple[int, ...] = ()
        if limit is not None:
            sql, params = f"{sql} LIMIT ?", (limit,)
        with self._lock:
            rows = self._connection.execute(sql, params).fetchall()
        return [dict(row) for row in reversed(rows)]

    def counts(self) -> dict[tuple[str, str], int]:
        """Return how many drops each (watch, state) pair holds now."""
        with self._lock:
            rows = self._connection.execute(
                "SELECT watch, state, COUNT(*) FROM drops GROUP BY watch, state"
            ).fetchall()
        return {(row[0], row[1]): row[2] for row in rows}

    def last_success(self) -> dict[str, float]:
        """Return, per watch, when its last drop completed (Unix seconds)."""
        with self._lock:
            rows = self._connection.execute(
                "SELECT watch, MAX(finished_at) FROM drops WHERE state = 'completed' GROUP BY watch"
            ).fetchall()
        return {row[0]: row[1] for row in rows if row[1] is not None}

    # -- uploaded files --------------------------------------------------------------------

    def record_uploaded(self, drop_id: int, task_uuid: str, name: str) -> None:
        with self._transaction() as cursor:
            cursor.execute(
                "INSERT OR IGNORE INTO uploaded_files (drop_id, task_uuid, name) VALUES (?, ?, ?)",
                (drop_id, task_uuid, name),
            )

    def uploaded(self, drop_id: int, task_uuid: str) -> set[str]:
        with self._lock:
            rows = self._connection.execute(
                "SELECT name FROM uploaded_files WHERE drop_id = ? AND task_uuid = ?",
                (drop_id, task_uuid),
            ).fetchall()
        return {row[0] for row in rows}

    def forget_uploads(self, drop_id: int) -> None:
        """Drop the upload bookkeeping of finished attempts (kept small for long runs)."""
        with self._transaction() as cursor:
            cursor.execute("DELETE FROM uploaded_files WHERE drop_id = ?", (drop_id,))

    # -- notifications ---------------------------------------------------------------------

    def enqueue_notification(
        self,
        drop_id: int,
        event: str,
        target: Mapping[str, Any],
        payload: Mapping[str, Any],
        *,
        now: float,
    ) -> None:
        with self._transaction() as cursor:
            cursor.execute(
                "INSERT INTO notifications "
                "(drop_id, event, target, payload, next_attempt_at, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (drop_id, event, json.dumps(target), json.dumps(payload), now, now),
            )

    def due_notifications(self, now: float, limit: int = 20) -> list[Notification]:
        with self._lock:
            rows = self._connection.execute(
                "SELECT * FROM notifications WHERE next_attempt_at <= ? "
                "ORDER BY next_attempt_at LIMIT ?",
                (now, limit),
            ).fetchall()
        return [_notification(row) for row in rows]

    def next_notification_at(self, after: float) -> float | None:
        """Return when the next notification is due after ``after`` (None: none waits)."""
        with self._lock:
            row = self._connection.execute(
                "SELECT MIN(next_attempt_at) FROM notifications WHERE next_attempt_at > ?",
                (after,),
            ).fetchone()
        return None if row[0] is None else float(row[0])

    def pending_notifications(self) -> list[Notification]:
        with self._lock:
            rows = self._connection.execute("SELECT * FROM notifications ORDER BY id").fetchall()
        return [_notification(row) for row in rows]

    def forget_notification(self, notification_id: int) -> None:
        """Remove a notification that was delivered or given up (its payload holds a whole
        report: kept, they would grow the state file by every drop for ever)."""
        with self._transaction() as cursor:
            cursor.execute("DELETE FROM notifications WHERE id = ?", (notification_id,))

    def notification_failed(self, notification_id: int, *, error: str, retry_at: float) -> None:
        with self._transaction() as cursor:
            cursor.execute(
                "UPDATE notifications SET attempts = attempts + 1, last_error = ?, "
                "next_attempt_at = ? WHERE id = ?",
                (error, retry_at, notification_id),
            )

    def integrity_check(self) -> str:
        with self._lock:
            return str(self._connection.execute("PRAGMA integrity_check").fetchone()[0])

    def ping(self) -> bool:
        """Return whether the state file answers a trivial query."""
        try:
            with self._lock:
                self._connection.execute("SELECT 1").fetchone()
        except sqlite3.Error:
            return False
        return True


def _checked(column: str) -> str:
    if column not in _UPDATABLE:
        raise ValueError(f"not a drop field: {column}")
    return column


def _encode(column: str, value: Any) -> Any:
    if column in _JSON_FIELDS:
        return json.dumps(value)
    if column in _BOOL_FIELDS:
        return int(bool(value))
    if isinstance(value, DropState):
        return value.value
    return value


def _write(cursor: sqlite3.Cursor, drop_id: int, now: float, fields: Mapping[str, Any]) -> None:
    assignments = ["updated_at = ?"]
    params: list[Any] = [now]
    for key, value in fields.items():
        column = "state" if key == "state" else _checked(key)
        assignments.append(f"{column} = ?")
        params.append(_encode(column, value))
    params.append(drop_id)
    cursor.execute(
        f"UPDATE drops SET {', '.join(assignments)} WHERE id = ?",  # noqa: S608 - checked names
        params,
    )


def _drop(row: sqlite3.Row) -> Drop:
    values = dict(row)
    for key in _JSON_FIELDS:
        values[key] = json.loads(values[key])
    for key in _BOOL_FIELDS:
        values[key] = bool(values[key])
    values["state"] = DropState(values["state"])
    return Drop(**values)


def _notification(row: sqlite3.Row) -> Notification:
    values = dict(row)
    del values["delivered_at"]  # unused since schema 4: delivered ones are removed
    values["target"] = json.loads(values["target"])
    values["payload"] = json.loads(values["payload"])
    return Notification(**values)
