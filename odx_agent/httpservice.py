"""A small HTTP server on a daemon thread of its own, for the agent's endpoints (metrics and
health, the node's completion callbacks). Binds loopback unless told otherwise."""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


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


class BackgroundHTTPServer:
    """Serve ``handler`` on ``listen`` from a daemon thread named ``name``."""

    def __init__(self, listen: str, handler: type[BaseHTTPRequestHandler], *, name: str) -> None:
        self._address = parse_listen(listen)
        self._handler = handler
        self._name = name
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """Return the bound port (the real one when asked for port 0). Raise RuntimeError
        before ``start()``."""
        if self._server is None:
            raise RuntimeError(f"the {self._name} server is not started")
        return int(self._server.server_address[1])

    def start(self) -> None:
        """Bind the address and serve on a daemon thread. Raise OSError when the address
        cannot be bound."""
        if self._server is not None:
            return
        server_class = _Server6 if ":" in self._address[0] else _Server
        self._server = server_class(self._address, self._handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.2},
            name=f"odx-agent-{self._name}",
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
