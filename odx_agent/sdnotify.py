"""Tell systemd how the agent is doing (the ``sd_notify`` protocol).

A notification is one datagram of ``KEY=value`` lines sent to the AF_UNIX socket named by
``$NOTIFY_SOCKET``; a name starting with ``@`` is in the abstract namespace. Without that
variable (not started by systemd, or not ``Type=notify``) every call does nothing.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Mapping

from odx_agent.states import DropState

# The order in which drop states read naturally, from arrival to outcome.
SUMMARY_ORDER: tuple[str, ...] = tuple(state.value for state in DropState)


def _monotonic_usec() -> int:
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


class SystemdNotifier:
    """Send notifications to systemd's socket at ``address`` (None: do nothing).

    Every method returns True when the datagram was sent and False when there is no socket
    or sending failed: a lost notification must never stop the agent, and systemd notices
    a silent service through the watchdog anyway.
    """

    def __init__(
        self,
        address: str | None,
        *,
        watchdog_usec: str | None = None,
        watchdog_pid: str | None = None,
        monotonic_usec: Callable[[], int] = _monotonic_usec,
    ) -> None:
        self._address = "\0" + address[1:] if address and address.startswith("@") else address
        self._watchdog_usec = watchdog_usec
        self._watchdog_pid = watchdog_pid
        self._monotonic_usec = monotonic_usec
        self._socket: socket.socket | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> SystemdNotifier:
        """Given the process environment (``os.environ`` by default), return a notifier for
        ``$NOTIFY_SOCKET`` that knows ``$WATCHDOG_USEC`` and ``$WATCHDOG_PID``."""
        env = os.environ if environ is None else environ
        return cls(
            env.get("NOTIFY_SOCKET") or None,
            watchdog_usec=env.get("WATCHDOG_USEC"),
            watchdog_pid=env.get("WATCHDOG_PID"),
        )

    @property
    def enabled(self) -> bool:
        """Return True when there is a socket to notify."""
        return self._address is not None

    def ready(self) -> bool:
        """Say that start-up, or a reload, is finished."""
        return self.notify("READY=1")

    def reloading(self) -> bool:
        """Say that a configuration reload has begun (``ready()`` ends it)."""
        return self.notify("RELOADING=1", f"MONOTONIC_USEC={self._monotonic_usec()}")

    def stopping(self) -> bool:
        """Say that the agent is shutting down."""
        return self.notify("STOPPING=1")

    def status(self, text: str) -> bool:
        """Show ``text`` as the one-line status in ``systemctl status``."""
        return self.notify("STATUS=" + " ".join(text.split()))

    def watchdog(self) -> bool:
        """Tell the watchdog the agent is alive."""
        return self.notify("WATCHDOG=1")

    def watchdog_interval(self) -> float | None:
        """Return the watchdog timeout in seconds, or None when no watchdog is set for this
        process. Ping at half of it or more often."""
        if not self._watchdog_usec:
            return None
        if self._watchdog_pid and self._watchdog_pid != str(os.getpid()):
            return None
        try:
            usec = int(self._watchdog_usec)
        except ValueError:
            return None
        return usec / 1_000_000 if usec > 0 else None

    def notify(self, *assignments: str) -> bool:
        """Send ``assignments`` (``KEY=value`` strings) as one datagram."""
        if self._address is None:
            return False
        message = "\n".join(assignments).encode()
        with self._lock:
            try:
                if self._socket is None:
                    self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                    self._socket.setblocking(False)
                self._socket.sendto(message, self._address)
            except OSError:
                return False
        return True

    def close(self) -> None:
        """Close the socket; a later notification opens a new one."""
        with self._lock:
            if self._socket is not None:
                self._socket.close()
                self._socket = None


def summary_line(counts: Mapping[str, int]) -> str:
    """Given drop counts by state, return e.g. ``3 uploading, 2 processing, 1 failed``:
    states in their natural order (unknown ones last, by name), zeros left out, and
    ``idle`` when nothing is left."""
    known = [state for state in SUMMARY_ORDER if state in counts]
    unknown = sorted(state for state in counts if state not in SUMMARY_ORDER)
    parts = [f"{counts[state]} {state}" for state in (*known, *unknown) if counts[state] > 0]
    return ", ".join(parts) if parts else "idle"
