"""A TCP fault proxy on loopback for fault-injection tests.

The proxy sits between a client (the agent, or the client library) and a server (the
simulated node) and misbehaves on request: adds latency, limits bandwidth, cuts a stream
after N bytes, resets, swallows, drips, or holds one chosen HTTP request (or its answer)
until the test releases or cuts it. Every thread it starts waits on an event or a socket
that stop() closes, so stop() returns within a bounded time.
"""

from __future__ import annotations

import re
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from tests.support.httpframing import RequestFramer

MODES = ("pass", "latency", "bandwidth", "cut_after", "reset", "blackhole", "drip")
# Modes that shape bytes as they flow, and so also apply to connections already open.
SHAPING_MODES = ("pass", "latency", "bandwidth", "drip")
READ_SIZE = 65536
JOIN_SECONDS = 5.0


@dataclass(frozen=True)
class Mode:
    """One fault mode and its parameters, as given to FaultProxy.set_mode()."""

    name: str = "pass"
    params: dict[str, Any] = field(default_factory=dict)

    def number(self, key: str, default: float | None = None) -> float:
        """Given a parameter name, return its value as a float. Raise ValueError when absent."""
        value = self.params.get(key, default)
        if value is None:
            raise ValueError(f"mode {self.name!r} needs {key}=")
        return float(value)


class Hold:
    """One pending hold: the next request whose head matches is stopped until released."""

    def __init__(
        self, match: bytes | re.Pattern[bytes], direction: str, after_response_bytes: int
    ) -> None:
        self.match = match
        self.direction = direction
        self.after_response_bytes = after_response_bytes
        self.request_head = b""
        self._held = threading.Event()
        self._finished = threading.Event()
        self._cut = False
        self._connection: _Connection | None = None

    def matches(self, head: bytes) -> bool:
        """Given a request head, return whether this hold is meant for it."""
        if isinstance(self.match, re.Pattern):
            return self.match.search(head) is not None
        return self.match in head

    def wait_held(self, timeout: float) -> bool:
        """Given a timeout in seconds, return True once the request is being held."""
        return self._held.wait(timeout)

    @property
    def held(self) -> bool:
        """Return whether the matching request is being held right now."""
        return self._held.is_set() and not self._finished.is_set()

    def release(self) -> None:
        """Let the held request continue (or cancel the hold if nothing matched yet)."""
        self._finished.set()

    def cut(self) -> None:
        """Close the held connection on both sides (or cancel the hold if nothing matched)."""
        self._cut = True
        self._finished.set()
        if self._connection is not None:
            self._connection.close()

    def block(self, connection: _Connection, stop: threading.Event) -> bool:
        """Given the connection, hold it until released. Return False when it was cut."""
        self._connection = connection
        self._held.set()
        while not self._finished.wait(0.05):
            if stop.is_set() or connection.closed.is_set():
                return False
        return not self._cut


class _Connection:
    """One client connection and its upstream twin; close() ends both at once."""

    def __init__(self, client: socket.socket, upstream: socket.socket | None) -> None:
        self.client = client
        self.upstream = upstream
        self.closed = threading.Event()
        self.down_hold: Hold | None = None
        self.down_hold_budget = 0
        self.lock = threading.Lock()

    def close(self) -> None:
        """Close both sides; pumps blocked on either socket wake up and finish."""
        self.closed.set()
        for sock in (self.client, self.upstream):
            if sock is None:
                continue
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()


class FaultProxy:
    """Forward 127.0.0.1:<port> to a target, injecting the faults set by set_mode()/hold()."""

    def __init__(self, target_host: str, target_port: int, *, max_connections: int = 64) -> None:
        self.target_host = target_host
        self.target_port = target_port
        self.max_connections = max_connections
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._mode = Mode()
        self._holds: list[Hold] = []
        self._connections: set[_Connection] = set()
        self._threads: set[threading.Thread] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.connections_seen = 0
        self.connections_refused = 0
        self.requests_seen = 0
        self.bytes_up = 0
        self.bytes_down = 0

    @property
    def port(self) -> int:
        """Return the loopback port the proxy listens on."""
        port: int = self._listener.getsockname()[1]
        return port

    @property
    def url(self) -> str:
        """Return the proxy's base URL, http://127.0.0.1:<port>."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def connections_open(self) -> int:
        """Return how many client connections are open right now."""
        with self._lock:
            return len(self._connections)

    def start(self) -> FaultProxy:
        """Start accepting connections; return self so it chains."""
        self._listener.listen(self.max_connections)
        self._listener.settimeout(0.1)
        self._spawn(self._accept_loop)
        return self

    def stop(self) -> None:
        """Close the listener and every connection; join every thread within a bound."""
        self._stop.set()
        self._listener.close()
        with self._lock:
            connections = list(self._connections)
            threads = list(self._threads)
        for connection in connections:
            connection.close()
        deadline = time.monotonic() + JOIN_SECONDS
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def set_mode(self, mode: str, **params: Any) -> None:
        """Given a mode name and its parameters, apply it to new connections.

        pass: forward untouched. latency (seconds=): every chunk read, either way, waits
        that long before it is sent on. bandwidth (bytes_per_second=): each direction is
        paced to that rate. cut_after (bytes=, direction="down"|"up"): after that many
        bytes in that direction, both sides are closed. reset: the client gets an RST at
        once. blackhole: the client's bytes are read and dropped, nothing ever answers.
        drip (interval=0.05): the answer comes one byte per interval.

        Raise ValueError for an unknown mode or a missing parameter. The shaping modes
        (pass, latency, bandwidth, drip) also apply to connections already open.
        """
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; expected one of {MODES}")
        new_mode = Mode(mode, dict(params))
        required = {"latency": "seconds", "bandwidth": "bytes_per_second", "cut_after": "bytes"}
        if mode in required:
            new_mode.number(required[mode])
        if mode == "cut_after" and params.get("direction", "down") not in ("up", "down"):
            raise ValueError("cut_after direction must be 'up' or 'down'")
        self._mode = new_mode

    def hold(
        self,
        match: bytes | re.Pattern[bytes],
        *,
        direction: str = "up",
        after_response_bytes: int | None = None,
    ) -> Hold:
        """Given bytes (or a bytes regex) to find in a request head, hold the next such request.

        With direction "up" the request is held before any of it reaches the target. With
        direction "down", or with after_response_bytes=N, the request goes through and its
        answer is held after N bytes (0 by default) reached the client.
        """
        if direction not in ("up", "down"):
            raise ValueError("hold direction must be 'up' or 'down'")
        if after_response_bytes is not None:
            direction = "down"
        hold = Hold(match, direction, after_response_bytes or 0)
        with self._lock:
            self._holds.append(hold)
        return hold

    def _spawn(self, target: Any, *args: Any) -> None:
        thread = threading.Thread(target=self._run_tracked, args=(target, *args), daemon=True)
        with self._lock:
            self._threads.add(thread)
        thread.start()

    def _run_tracked(self, target: Any, *args: Any) -> None:
        try:
            target(*args)
        finally:
            with self._lock:
                self._threads.discard(threading.current_thread())

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            with self._lock:
                self.connections_seen += 1
                full = len(self._connections) >= self.max_connections
                if full:
                    self.connections_refused += 1
            if full:
                client.close()
                continue
            self._spawn(self._serve, client, self._mode)

    def _serve(self, client: socket.socket, mode: Mode) -> None:
        if mode.name == "reset":
            # Linger on with a zero timeout makes close() send RST instead of FIN.
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            client.close()
            return
        upstream: socket.socket | None = None
        if mode.name != "blackhole":
            try:
                upstream = socket.create_connection((self.target_host, self.target_port), 5.0)
                upstream.settimeout(None)
            except OSError:
                client.close()
                return
        connection = _Connection(client, upstream)
        with self._lock:
            self._connections.add(connection)
        try:
            if upstream is None:
                self._swallow(connection)
                return
            down = threading.Thread(target=self._pump, args=(connection, mode, "down"))
            down.start()
            self._pump(connection, mode, "up")
            down.join()
        finally:
            connection.close()
            with self._lock:
                self._connections.discard(connection)

    def _swallow(self, connection: _Connection) -> None:
        while not self._stop.is_set():
            try:
                if not connection.client.recv(READ_SIZE):
                    return
            except OSError:
                return

    def _pump(self, connection: _Connection, mode: Mode, direction: str) -> None:
        assert connection.upstream is not None
        source, sink = connection.client, connection.upstream
        if direction == "down":
            source, sink = sink, source
        framer = RequestFramer() if direction == "up" else None
        cut_budget: int | None = None
        if mode.name == "cut_after" and mode.params.get("direction", "down") == direction:
            cut_budget = int(mode.number("bytes"))
        while not connection.closed.is_set():
            try:
                data = source.recv(self._read_size(direction))
            except OSError:
                break
            if not data:
                break
            if cut_budget is not None:
                data = data[:cut_budget]
                cut_budget -= len(data)
            pieces = framer.feed(data) if framer is not None else [(False, data)]
            for is_head, piece in pieces:
                if is_head and not self._on_request_head(connection, piece):
                    connection.close()
                    return
                if not self._forward(connection, sink, piece, direction):
                    connection.close()
                    return
            if cut_budget == 0:
                if framer is not None:
                    self._send(sink, framer.flush(), direction)
                connection.close()
                return
        # Pass the end of one stream on, so the peer sees EOF while the other direction
        # may still be delivering the last answer.
        try:
            sink.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def _read_size(self, direction: str) -> int:
        mode = self._mode
        if mode.name == "bandwidth":
            return max(1, min(READ_SIZE, int(mode.number("bytes_per_second") / 20)))
        if mode.name == "drip" and direction == "down":
            return 1
        return READ_SIZE

    def _on_request_head(self, connection: _Connection, head: bytes) -> bool:
        """Given a request head, apply the first matching hold. Return False to cut."""
        with self._lock:
            self.requests_seen += 1
            hold = next((h for h in self._holds if h.matches(head)), None)
            if hold is not None:
                self._holds.remove(hold)
        if hold is None:
            return True
        hold.request_head = head
        if hold.direction == "up":
            return hold.block(connection, self._stop)
        with connection.lock:
            connection.down_hold = hold
            connection.down_hold_budget = hold.after_response_bytes
        return True

    def _forward(
        self, connection: _Connection, sink: socket.socket, data: bytes, direction: str
    ) -> bool:
        """Given bytes read in a direction, shape and send them. Return False to cut."""
        while data:
            if direction == "down" and connection.down_hold is not None:
                with connection.lock:
                    allowed = connection.down_hold_budget
                if allowed == 0:
                    hold, connection.down_hold = connection.down_hold, None
                    if not hold.block(connection, self._stop):
                        return False
                    continue
                piece, data = data[:allowed], data[allowed:]
                with connection.lock:
                    connection.down_hold_budget -= len(piece)
            else:
                piece, data = data, b""
            if not self._shape(piece, direction) or not self._send(sink, piece, direction):
                return False
        return True

    def _shape(self, piece: bytes, direction: str) -> bool:
        """Wait as the current mode asks before sending piece. Return False when stopping."""
        mode = self._mode
        delay = 0.0
        if mode.name == "latency":
            delay = mode.number("seconds")
        elif mode.name == "bandwidth":
            delay = len(piece) / mode.number("bytes_per_second")
        elif mode.name == "drip" and direction == "down":
            delay = mode.number("interval", 0.05) * len(piece)
        return not (delay > 0 and self._stop.wait(delay))

    def _send(self, sink: socket.socket, piece: bytes, direction: str) -> bool:
        try:
            sink.sendall(piece)
        except OSError:
            return False
        with self._lock:
            if direction == "up":
                self.bytes_up += len(piece)
            else:
                self.bytes_down += len(piece)
        return True
