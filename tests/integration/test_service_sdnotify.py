"""``odx-agent run`` as systemd runs it: sd_notify messages on a real AF_UNIX socket, in
order, around start-up, work, a reload (SIGHUP) and a stop (SIGTERM)."""

from __future__ import annotations

import itertools
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from odx_agent.commands.status import status_rows
from odx_agent.simnode import SimulatedNode
from tests.support.notifysocket import NotifySocket
from tests.support.servicekit import add_drop, agent_process, wait_for, watch, write_config

WATCHDOG_SECONDS = 4.0
TICK_SECONDS = 1.0  # slack for the loop turn that sends a ping


@pytest.fixture
def node(tmp_path: Path) -> Iterator[SimulatedNode]:
    with SimulatedNode(tmp_path / "node", processing_seconds=0.2) as sim:
        yield sim


@pytest.fixture
def notify_socket() -> Iterator[NotifySocket]:
    receiver = NotifySocket()
    yield receiver
    receiver.close()


def _kinds(texts: list[str]) -> list[str]:
    """Return the messages other than watchdog pings and status lines, by their first key."""
    return [
        text.split("=", 1)[0]
        for text in texts
        if text != "WATCHDOG=1" and not text.startswith("STATUS=")
    ]


def test_run_notifies_systemd_through_start_work_reload_and_stop(
    tmp_path: Path, node: SimulatedNode, notify_socket: NotifySocket
) -> None:
    config = write_config(tmp_path, [{"name": "sim", "url": node.url}], [watch("farm")])
    add_drop(tmp_path, "farm", "flight-1")
    stderr = tmp_path / "agent.log"
    environment = {
        "NOTIFY_SOCKET": notify_socket.path,
        "WATCHDOG_USEC": str(int(WATCHDOG_SECONDS * 1e6)),
    }
    with agent_process(config, stderr, env=environment) as process:
        wait_for(lambda: "READY=1" in notify_socket.texts(), timeout=20)
        # ready means the state file is open and the watch was looked at already
        assert [row["drop"] for row in status_rows(tmp_path / "state.sqlite")] == ["flight-1"]
        log = stderr.read_text()
        assert log.index("drop seen") < log.index("odx-agent running")

        wait_for(lambda: "STATUS=1 completed" in notify_socket.texts(), timeout=20)
        pings_needed = len(notify_socket.pings()) + 4
        wait_for(lambda: len(notify_socket.pings()) >= pings_needed, timeout=20)

        before_reload = len(notify_socket.texts())
        process.send_signal(signal.SIGHUP)
        wait_for(lambda: _kinds(notify_socket.texts()[before_reload:]) == ["RELOADING", "READY"])
        reloading = next(text for text in notify_socket.texts() if text.startswith("RELOADING=1"))
        assert reloading.splitlines()[1].startswith("MONOTONIC_USEC=")

        process.send_signal(signal.SIGTERM)
        assert process.wait(10) == 0

    texts = notify_socket.texts()
    assert texts[0] == "READY=1"
    assert _kinds(texts) == ["READY", "RELOADING", "READY", "STOPPING"]
    statuses = [text.removeprefix("STATUS=") for text in texts if text.startswith("STATUS=")]
    assert statuses[-1] == "1 completed"
    assert all("\n" not in status for status in statuses)
    assert texts.index("READY=1") < texts.index("STATUS=" + statuses[0])

    pings = notify_socket.pings()
    gaps = [later - earlier for earlier, later in itertools.pairwise(pings)]
    assert len(gaps) >= 4
    half = WATCHDOG_SECONDS / 2
    assert all(half * 0.9 <= gap <= half + TICK_SECONDS + 0.5 for gap in gaps), gaps
    assert "configuration reloaded" in stderr.read_text()


def test_watchdog_pings_are_left_to_the_process_systemd_watches(
    tmp_path: Path, node: SimulatedNode, notify_socket: NotifySocket
) -> None:
    config = write_config(tmp_path, [{"name": "sim", "url": node.url}], [watch("farm")])
    environment = {
        "NOTIFY_SOCKET": notify_socket.path,
        "WATCHDOG_USEC": "1000000",
        "WATCHDOG_PID": "1",  # another process: this one must not ping
    }
    with agent_process(config, tmp_path / "agent.log", env=environment) as process:
        wait_for(lambda: "STATUS=idle" in notify_socket.texts(), timeout=20)
        process.send_signal(signal.SIGTERM)
        try:
            assert process.wait(10) == 0
        except subprocess.TimeoutExpired:
            pytest.fail("odx-agent did not stop within 10 s of SIGTERM")
    assert notify_socket.pings() == []
    assert _kinds(notify_socket.texts()) == ["READY", "STOPPING"]
