"""Small loopback servers that misbehave on purpose, for the client's tests: a scripted raw
HTTP server (drips, short bodies, corrupt archives, Range answers), a black hole that
accepts connections and never answers, and a port nobody listens on.

Every thread waits on a socket with a timeout or on the stop event, so stop() returns
within a bounded time. This module holds no tests of its own besides a self-check.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

JOIN_SECONDS = 5.0
ACCEPT_POLL_SECONDS = 0.1


@dataclass
class Request:
    """One request as the scripted server saw it."""

    method: str
    target: str
    headers: dict[str, str]
    body: bytes


Handler = Callable[[socket.socket, Request, threading.Event], None]


def _read_request(connection: socket.socket) -> Request | None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = connection.recv(65536)
        if not chunk:
            return None
        data += chunk
        if len(data) > 1 << 20:
            return None
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, target, _version = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        chunk = connection.recv(65536)
        if not chunk:
            break
        rest += chunk
    return Request(method, target, headers, rest[:length])


@dataclass
class ScriptedServer:
    """Given a handler, answer every request on 127.0.0.1 by calling it with the raw
    socket, the parsed request and the stop event; the connection is closed afterwards."""

    handler: Handler
    tls_context: ssl.SSLContext | None = None
    requests: list[Request] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _listener: socket.socket | None = None

    @property
    def port(self) -> int:
        assert self._listener is not None
        return int(self._listener.getsockname()[1])

    @property
    def url(self) -> str:
        scheme = "https" if self.tls_context else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    def start(self) -> None:
        listener = socket.create_server(("127.0.0.1", 0))
        listener.settimeout(ACCEPT_POLL_SECONDS)
        self._listener = listener
        thread = threading.Thread(target=self._accept_loop, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._stop.is_set():
            try:
                connection, _address = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            thread = threading.Thread(target=self._serve, args=(connection,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _serve(self, connection: socket.socket) -> None:
        connection.settimeout(JOIN_SECONDS)
        try:
            if self.tls_context is not None:
                connection = self.tls_context.wrap_socket(connection, server_side=True)
            request = _read_request(connection)
            if request is not None:
                self.requests.append(request)
                self.handler(connection, request, self._stop)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                connection.close()

    def stop(self) -> None:
        self._stop.set()
        if self._listener is not None:
            self._listener.close()
        for thread in self._threads:
            thread.join(JOIN_SECONDS)

    def __enter__(self) -> ScriptedServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def head(status: str, headers: dict[str, str]) -> bytes:
    """Given a status line tail and headers, return an HTTP/1.1 response head."""
    lines = [f"HTTP/1.1 {status}", *(f"{name}: {value}" for name, value in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def answer(
    body: bytes, *, content_type: str = "application/json", status: str = "200 OK"
) -> Handler:
    """Return a handler that sends this whole body."""

    def handler(connection: socket.socket, request: Request, stop: threading.Event) -> None:
        headers = {"Content-Type": content_type, "Content-Length": str(len(body))}
        connection.sendall(head(status, headers) + body)

    return handler


def drip(
    declared_length: int,
    seconds_per_byte: float = 1.0,
    *,
    content_type: str = "application/zip",
    byte: bytes = b"P",
) -> Handler:
    """Return a handler that declares a body of ``declared_length`` bytes and then sends
    ``byte`` every ``seconds_per_byte`` until stopped."""

    def handler(connection: socket.socket, request: Request, stop: threading.Event) -> None:
        headers = {"Content-Type": content_type, "Content-Length": str(declared_length)}
        connection.sendall(head("200 OK", headers))
        for _ in range(declared_length):
            connection.sendall(byte)
            if stop.wait(seconds_per_byte):
                return

    return handler


def short_body(declared_length: int, sent: bytes) -> Handler:
    """Return a handler that declares ``declared_length`` bytes, sends fewer and closes."""

    def handler(connection: socket.socket, request: Request, stop: threading.Event) -> None:
        headers = {"Content-Type": "application/zip", "Content-Length": str(declared_length)}
        connection.sendall(head("200 OK", headers) + sent)

    return handler


@contextlib.contextmanager
def black_hole() -> Iterator[int]:
    """Yield the port of a socket that completes TCP handshakes and never answers."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=16)
    try:
        yield int(listener.getsockname()[1])
    finally:
        listener.close()


def closed_port() -> int:
    """Return a loopback port that nothing listens on (bound once, then released)."""
    with socket.create_server(("127.0.0.1", 0)) as probe:
        return int(probe.getsockname()[1])


def test_scripted_server_answers_and_records_the_request() -> None:
    with (
        ScriptedServer(answer(b'{"ok": true}')) as server,
        socket.create_connection(("127.0.0.1", server.port), timeout=JOIN_SECONDS) as client,
    ):
        client.sendall(b"GET /x?y=1 HTTP/1.1\r\nHost: a\r\nRange: bytes=1-\r\n\r\n")
        received = b""
        while chunk := client.recv(65536):
            received += chunk
    assert received.endswith(b'\r\n\r\n{"ok": true}')
    assert server.requests == [Request("GET", "/x?y=1", {"host": "a", "range": "bytes=1-"}, b"")]
