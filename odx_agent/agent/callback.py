"""The fast path: the node announces a finished task at once instead of waiting for a poll.

Each task gets its own webhook URL, ``<callback_url>/odx-callback/<task uuid>/<secret>``,
where the secret is an HMAC of the task UUID under a random key kept in a 0600 file beside
the state file, so URLs handed to the node before a restart stay valid after it and nobody
without the key can make one up. A valid call only wakes the loop to poll that task now:
the body is never read for meaning, as polling stays the source of truth. Anything else is
refused (404 for unknown paths, 403 for a wrong secret, 413 for a large body, 501 for
methods other than GET and POST).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import re
import secrets
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import ClassVar

from odx_agent.atomicfile import write_atomically
from odx_agent.httpservice import BackgroundHTTPServer

PATH_PREFIX = "odx-callback"
KEY_BYTES = 32
MAX_BODY_BYTES = 64 * 1024
# The node's announcement is tiny; a slow or stalled sender is cut off rather than
# holding a thread.
READ_TIMEOUT_SECONDS = 10.0
_CALL = re.compile(
    r"^(?:/[^?#]*)?/" + PATH_PREFIX + r"/(?P<uuid>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-"
    r"[0-9a-f]{4}-[0-9a-f]{12})/(?P<secret>[^/?#]*)$"
)


def key_path(state_file: Path) -> Path:
    """Given the state file, return the path of the callback key beside it."""
    return Path(f"{state_file}.callback-key")


def load_or_create_key(path: Path) -> bytes:
    """Given the key file's path, return its key, creating the file (0600, random) when
    it does not exist or holds no usable key. Raise OSError when it cannot be written."""
    with contextlib.suppress(FileNotFoundError):
        key = path.read_bytes()
        if len(key) == KEY_BYTES:
            if path.stat().st_mode & 0o077:
                os.chmod(path, 0o600)
            return key
    key = secrets.token_bytes(KEY_BYTES)
    write_atomically(path, key, mode=0o600)
    return key


class CallbackSecrets:
    """Make and check the per-task callback URLs under one key."""

    def __init__(self, base_url: str, key: bytes) -> None:
        self._base = base_url.rstrip("/")
        self._key = key

    def __repr__(self) -> str:
        return f"CallbackSecrets(base_url={self._base!r})"

    def secret(self, task_uuid: str) -> str:
        """Given a task UUID, return its secret (hex)."""
        return hmac.new(self._key, task_uuid.encode(), hashlib.sha256).hexdigest()

    def url(self, task_uuid: str) -> str:
        """Given a task UUID, return the webhook URL the node should call for it."""
        return f"{self._base}/{PATH_PREFIX}/{task_uuid}/{self.secret(task_uuid)}"

    def valid(self, task_uuid: str, secret: str) -> bool:
        """Return whether ``secret`` belongs to ``task_uuid`` (compared in constant time)."""
        return hmac.compare_digest(self.secret(task_uuid).encode(), secret.encode())


class _Handler(BaseHTTPRequestHandler):
    disable_nagle_algorithm = True  # headers and body are two writes
    secrets: ClassVar[CallbackSecrets]
    announce: ClassVar[Callable[[str], None]]
    server_version = "odx-agent"
    timeout = READ_TIMEOUT_SECONDS

    def do_POST(self) -> None:
        match = _CALL.match(self.path)
        if match is None:
            self._reply(404, b"not found\n")
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY_BYTES:
            self._reply(413, b"body too large\n")
            return
        if not type(self).secrets.valid(match["uuid"], match["secret"]):
            self._reply(403, b"forbidden\n")
            return
        self.rfile.read(length)  # read and ignored: the poll that follows tells the truth
        type(self).announce(match["uuid"])
        self._reply(200, b"ok\n")

    def do_GET(self) -> None:
        self._reply(404, b"not found\n")

    def _reply(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        if status != 200:
            # an unread body must not be taken for the next request
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Stay quiet: request lines carry the per-task secrets."""


class CallbackServer(BackgroundHTTPServer):
    """Listen on ``listen`` for task announcements checked by ``secrets``; call
    ``announce(task_uuid)`` (from a server thread) for each valid one."""

    def __init__(
        self, listen: str, secrets: CallbackSecrets, announce: Callable[[str], None]
    ) -> None:
        handler = type(
            "CallbackHandler",
            (_Handler,),
            {"secrets": secrets, "announce": staticmethod(announce)},
        )
        super().__init__(listen, handler, name="callback")


class CallbackInbox:
    """The task UUIDs announced since the loop last looked (thread-safe, bounded)."""

    LIMIT = 10_000

    def __init__(self, wake: Callable[[], None]) -> None:
        self._wake = wake
        self._lock = threading.Lock()
        self._announced: set[str] = set()

    def announce(self, task_uuid: str) -> None:
        """Record that the node announced ``task_uuid`` and wake the loop."""
        with self._lock:
            if len(self._announced) < self.LIMIT:
                self._announced.add(task_uuid)
        self._wake()

    def take(self) -> set[str]:
        """Return the announced UUIDs and forget them."""
        with self._lock:
            announced, self._announced = self._announced, set()
        return announced

    def put_back(self, task_uuids: set[str]) -> None:
        """Keep ``task_uuids`` for the next look (their drop was busy this time)."""
        with self._lock:
            self._announced |= task_uuids
