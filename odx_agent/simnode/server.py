"""HTTP plumbing of the simulated node: the threaded server, keep-alive, answers,
the token check and injected answers. Endpoints live in ``routes``.
"""

from __future__ import annotations

import contextlib
import hmac
import random
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, BinaryIO, cast
from urllib.parse import parse_qsl, urlsplit

from odx_agent.simnode.formdata import BodyError, iter_body
from odx_agent.simnode.jsvalues import dump_json
from odx_agent.simnode.registry import TaskRegistry
from odx_agent.simnode.routes import dispatch

JSON_TYPE = "application/json; charset=utf-8"
TOKEN_ERROR = {"error": "Invalid authentication token: token does not match."}
IDLE_TIMEOUT_SECONDS = 120.0


@dataclass
class InjectedAnswer:
    """A raw answer the next ``count`` matching requests receive instead of the real one."""

    method: str
    path_prefix: str
    status: int
    body: bytes
    content_type: str
    count: int


@dataclass
class NodeApp:
    """Everything the request handlers share: tasks, settings and test hooks."""

    registry: TaskRegistry
    token: str
    archive: Path
    drop_uploads: bool
    seed: int
    max_images: int | None
    max_parallel_tasks: int
    lock: threading.Lock = field(default_factory=threading.Lock)
    injected: list[InjectedAnswer] = field(default_factory=list)
    seen: list[tuple[str, str]] = field(default_factory=list)
    drop_random: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self.drop_random = random.Random(self.seed)  # noqa: S311 (reproducible faults, not secrets)

    def should_drop_upload(self) -> bool:
        """Return True when this upload is one of the about half the node drops."""
        with self.lock:
            return self.drop_uploads and self.drop_random.random() < 0.5

    def take_injected(self, method: str, path: str) -> InjectedAnswer | None:
        """Given a request, return the injected answer it consumes, if one matches."""
        with self.lock:
            for answer in self.injected:
                if answer.method == method and path.startswith(answer.path_prefix):
                    answer.count -= 1
                    if answer.count <= 0:
                        self.injected.remove(answer)
                    return answer
            return None


class NodeServer(ThreadingHTTPServer):
    """A threaded HTTP server that can cut its open keep-alive connections on close."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], app: NodeApp) -> None:
        self.app = app
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, NodeRequestHandler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Shut every open client connection so no handler keeps serving after a stop."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            # A connection the client already closed raises OSError: nothing to cut.
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class NodeRequestHandler(BaseHTTPRequestHandler):
    """One client connection; answers as NodeODX does, HTTP/1.1 with keep-alive."""

    protocol_version = "HTTP/1.1"
    # Headers and body leave in separate writes; with Nagle's algorithm on, the body waits
    # for the client's delayed ACK (up to 40 ms) on every keep-alive answer.
    disable_nagle_algorithm = True
    server: NodeServer
    timeout = IDLE_TIMEOUT_SECONDS
    path_only = ""
    query: dict[str, str]
    body_read = False
    answered = False

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: tests and demos read the node's answers, not its access log."""

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def _handle(self, method: str) -> None:
        parts = urlsplit(self.path)
        self.path_only = parts.path
        self.query = dict(parse_qsl(parts.query, keep_blank_values=True))
        self.body_read = False
        self.answered = False
        app = self.server.app
        with app.lock:
            app.seen.append((method, self.path_only))
        try:
            injected = app.take_injected(method, self.path_only)
            if injected is not None:
                self.drain_body()
                self.send_raw(injected.status, injected.body, injected.content_type)
            elif not self._token_ok(app.token):
                self.drain_body()
                self.send_json(TOKEN_ERROR)
            else:
                dispatch(self, app, method)
                self.drain_body()
        except BodyError:
            self.close_connection = True
            if not self.answered:
                self.send_raw(400, b"Bad Request", "text/plain; charset=utf-8")
        except (ConnectionError, TimeoutError):
            self.close_connection = True

    def _token_ok(self, token: str) -> bool:
        if not token or self.path_only == "/auth/info":
            return True
        given = self.query.get("token", "")
        return hmac.compare_digest(given.encode("utf-8"), token.encode("utf-8"))

    def body_chunks(self) -> Any:
        """Return an iterator over the request body; the body can be read only once."""
        self.body_read = True
        length = self.headers.get("Content-Length")
        chunked = "chunked" in self.headers.get("Transfer-Encoding", "").lower()
        try:
            size = int(length) if length else 0
        except ValueError:
            raise BodyError("bad Content-Length") from None
        return iter_body(cast(BinaryIO, self.rfile), size, chunked)

    def drain_body(self) -> None:
        """Read and discard a body nobody read, so the next request on the connection
        starts at the right byte."""
        if not self.body_read:
            for _ in self.body_chunks():
                pass

    def send_json(self, value: Any) -> None:
        """Given a JSON-compatible value, answer it with status 200 as the node does."""
        self.send_raw(200, dump_json(value), JSON_TYPE)

    def send_raw(
        self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        """Given a status, body and content type, send a complete answer."""
        self.answered = True
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def send_file(self, path: Path, headers: dict[str, str]) -> None:
        """Given a file and extra headers, stream it as a 200 answer without loading it."""
        self.answered = True
        with path.open("rb") as stream:
            size = path.stat().st_size
            self.send_response(200)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(size))
            self.end_headers()
            self.connection.sendfile(stream)
