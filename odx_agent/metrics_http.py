"""The HTTP endpoint of the agent (``/metrics`` and ``/healthz``) and the heartbeat that
tells whether the main loop is still turning."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

HealthCheck = Callable[[], tuple[bool, dict[str, object]]]


class Heartbeat:
    """Remember when the main loop last went round.

    The loop calls ``beat()`` on every turn; ``/healthz`` and the systemd watchdog ask
    ``healthy()``. Construction counts as a beat so start-up has a full ``max_age_seconds``
    of grace. A float assignment is atomic in CPython, so no lock is needed.
    """

    def __init__(
        self, *, max_age_seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if max_age_seconds <= 0:
            raise ValueError("max_age_seconds must be positive")
        self.max_age_seconds = max_age_seconds
        self._clock = clock
        self._last = clock()

    def beat(self) -> None:
        """Record that the loop is alive now."""
        self._last = self._clock()

    def age(self) -> float:
        """Return the seconds since the last beat."""
        return max(0.0, self._clock() - self._last)

    def healthy(self) -> bool:
        """Return True when the last beat is at most ``max_age_seconds`` old."""
        return self.age() <= self.max_age_seconds

    def health(self) -> tuple[bool, dict[str, object]]:
        """Return ``(healthy, details)`` in the shape ``MetricsServer`` expects."""
        age = self.age()
        return age <= self.max_age_seconds, {
            "last_beat_age_seconds": round(age, 3),
            "max_age_seconds": self.max_age_seconds,
        }


def parse_listen(listen: str) -> tuple[str, int]:
    """Given ``host:port``, ``[v6-host]:port`` or ``:port``, return ``(host, port)``.
    An empty host means 127.0.0.1: binding every interface must be asked for by name.
    Raise ValueError when the text is not of that form."""
    host, separator, port_text = listen.rpartition(":")
    if not separator or not port_text.isdigit() or int(port_text) > 65535:
        raise ValueError(f"listen address must be HOST:PORT, got {listen!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host or "127.0.0.1", int(port_text)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # A restarted agent must bind again at once, even with connections in TIME_WAIT.
    allow_reuse_address = True


class _Server6(_Server):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    registry: ClassVar[CollectorRegistry]
    health: ClassVar[HealthCheck]
    server_version = "odx-agent"

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            self._reply(200, CONTENT_TYPE_LATEST, generate_latest(self.registry))
        elif path == "/healthz":
            self._healthz()
        else:
            self._reply(404, "text/plain; charset=utf-8", b"not found\n")

    def _healthz(self) -> None:
        try:
            ok, details = type(self).health()
        except Exception as error:  # noqa: BLE001 - a broken check is an unhealthy agent
            ok, details = False, {"error": type(error).__name__}
        body = json.dumps({"ok": ok, **details}, default=str, sort_keys=True) + "\n"
        self._reply(200 if ok else 503, "application/json", body.encode())

    def _reply(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Stay quiet: a scrape every few seconds would flood the journal."""


class MetricsServer:
    """Serve ``GET /metrics`` from ``registry`` and ``GET /healthz`` from ``health`` on a
    daemon thread. ``health`` must answer at once (read a heartbeat, never wait on the
    loop): 200 with its details as JSON when it says ok, 503 otherwise."""

    def __init__(self, listen: str, registry: CollectorRegistry, health: HealthCheck) -> None:
        self._address = parse_listen(listen)
        self._registry = registry
        self._health = health
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """Return the bound port (the real one when asked for port 0). Raise RuntimeError
        before ``start()``."""
        if self._server is None:
            raise RuntimeError("the metrics server is not started")
        return int(self._server.server_address[1])

    def start(self) -> None:
        """Bind the address and serve on a daemon thread. Raise OSError when the address
        cannot be bound."""
        if self._server is not None:
            return
        handler = type(
            "MetricsHandler",
            (_Handler,),
            {"registry": self._registry, "health": staticmethod(self._health)},
        )
        server_class = _Server6 if ":" in self._address[0] else _Server
        self._server = server_class(self._address, handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.2},
            name="odx-agent-metrics",
            daemon=True,
        )
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving, close the socket and wait up to ``timeout`` for the thread."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        server.shutdown()
        server.server_close()
        thread.join(timeout)
        self._server = self._thread = None
