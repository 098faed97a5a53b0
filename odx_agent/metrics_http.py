"""The HTTP endpoint of the agent (``/metrics`` and ``/healthz``) and the heartbeat that
tells whether the main loop is still turning."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import ClassVar

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from odx_agent.httpservice import BackgroundHTTPServer

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


class _Handler(BaseHTTPRequestHandler):
    disable_nagle_algorithm = True  # headers and body are two writes
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


class MetricsServer(BackgroundHTTPServer):
    """Serve ``GET /metrics`` from ``registry`` and ``GET /healthz`` from ``health`` on a
    daemon thread. ``health`` must answer at once (read a heartbeat, never wait on the
    loop): 200 with its details as JSON when it says ok, 503 otherwise."""

    def __init__(self, listen: str, registry: CollectorRegistry, health: HealthCheck) -> None:
        handler = type(
            "MetricsHandler", (_Handler,), {"registry": registry, "health": staticmethod(health)}
        )
        super().__init__(listen, handler, name="metrics")
