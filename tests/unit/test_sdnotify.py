"""SystemdNotifier against a real datagram socket, as systemd would listen."""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from odx_agent.sdnotify import SystemdNotifier, summary_line


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[tuple[str, socket.socket]]:
    path = str(tmp_path / "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(2)
    try:
        yield path, sock
    finally:
        sock.close()


def _receive(sock: socket.socket, count: int) -> list[str]:
    return [sock.recv(4096).decode() for _ in range(count)]


def test_messages_arrive_in_order_and_exactly(listener: tuple[str, socket.socket]) -> None:
    path, sock = listener
    notifier = SystemdNotifier(path, monotonic_usec=lambda: 123456789)
    assert notifier.enabled
    assert notifier.ready()
    assert notifier.status("3 uploading,\n2 processing")
    assert notifier.watchdog()
    assert notifier.reloading()
    assert notifier.ready()
    assert notifier.stopping()
    notifier.close()
    assert _receive(sock, 6) == [
        "READY=1",
        "STATUS=3 uploading, 2 processing",
        "WATCHDOG=1",
        "RELOADING=1\nMONOTONIC_USEC=123456789",
        "READY=1",
        "STOPPING=1",
    ]


def test_from_environment_uses_notify_socket(listener: tuple[str, socket.socket]) -> None:
    path, sock = listener
    notifier = SystemdNotifier.from_environment({"NOTIFY_SOCKET": path})
    assert notifier.ready()
    assert _receive(sock, 1) == ["READY=1"]


def test_reloading_sends_the_real_monotonic_clock(listener: tuple[str, socket.socket]) -> None:
    path, sock = listener
    # On Linux time.monotonic() reads CLOCK_MONOTONIC, the clock systemd expects.
    before = int(time.monotonic() * 1_000_000)
    SystemdNotifier(path).reloading()
    after = int(time.monotonic() * 1_000_000)
    first, second = _receive(sock, 1)[0].split("\n")
    assert first == "RELOADING=1"
    assert before - 1 <= int(second.removeprefix("MONOTONIC_USEC=")) <= after + 1


def test_abstract_socket_names_are_supported() -> None:
    name = f"odx-agent-test-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(2)
    try:
        assert SystemdNotifier.from_environment({"NOTIFY_SOCKET": "@" + name}).watchdog()
        assert _receive(sock, 1) == ["WATCHDOG=1"]
    finally:
        sock.close()


def test_without_notify_socket_every_call_is_a_no_op() -> None:
    notifier = SystemdNotifier.from_environment({})
    assert not notifier.enabled
    assert not notifier.ready()
    assert not notifier.status("x")
    assert not notifier.watchdog()
    assert notifier.watchdog_interval() is None


def test_a_vanished_socket_returns_false_instead_of_raising(tmp_path: Path) -> None:
    notifier = SystemdNotifier(str(tmp_path / "gone"))
    assert not notifier.ready()


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"WATCHDOG_USEC": "60000000"}, 60.0),
        ({"WATCHDOG_USEC": "60000000", "WATCHDOG_PID": str(os.getpid())}, 60.0),
        ({"WATCHDOG_USEC": "60000000", "WATCHDOG_PID": "1"}, None),
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "soon"}, None),
        ({}, None),
    ],
)
def test_watchdog_interval(environ: dict[str, str], expected: float | None) -> None:
    assert SystemdNotifier.from_environment(environ).watchdog_interval() == expected


def test_summary_line_orders_states_and_leaves_out_zeros() -> None:
    counts = {"failed": 1, "completed": 41, "uploading": 3, "processing": 2, "waiting": 0}
    assert summary_line(counts) == "3 uploading, 2 processing, 41 completed, 1 failed"
    assert summary_line({"zeta": 1, "alpha": 2, "ready": 1}) == "1 ready, 2 alpha, 1 zeta"
    assert summary_line({}) == "idle"
    assert summary_line({"completed": 0}) == "idle"
