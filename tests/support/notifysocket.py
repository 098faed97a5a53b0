"""A real AF_UNIX datagram socket standing in for systemd's NOTIFY_SOCKET in tests."""

from __future__ import annotations

import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path


class NotifySocket:
    """Bind a datagram socket in a short temporary folder (AF_UNIX paths are limited to
    about 100 bytes) and record every message with its monotonic arrival time."""

    def __init__(self) -> None:
        self._folder = Path(tempfile.mkdtemp(prefix="odxn-", dir="/tmp"))
        self.path = str(self._folder / "notify")
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._socket.bind(self.path)
        self._socket.settimeout(0.1)
        self._messages: list[tuple[float, str]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._receive, daemon=True)
        self._thread.start()

    def _receive(self) -> None:
        while not self._stop.is_set():
            try:
                data = self._socket.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self._messages.append((time.monotonic(), data.decode()))

    def messages(self) -> list[tuple[float, str]]:
        """Return every (arrival time, message) so far."""
        with self._lock:
            return list(self._messages)

    def texts(self) -> list[str]:
        return [text for _, text in self.messages()]

    def pings(self) -> list[float]:
        """Return the arrival times of the WATCHDOG=1 messages."""
        return [at for at, text in self.messages() if text == "WATCHDOG=1"]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._socket.close()
        shutil.rmtree(self._folder, ignore_errors=True)
