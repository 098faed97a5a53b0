"""/healthz and the systemd watchdog follow the main loop: a blocked loop shows, in-process."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from odx_agent.agent import Agent
from odx_agent.config import load_config
from odx_agent.sdnotify import SystemdNotifier
from odx_agent.simnode import SimulatedNode
from odx_agent.store import Drop, Store
from tests.support.notifysocket import NotifySocket
from tests.support.servicekit import add_drop, http_get, wait_for, watch, write_config

WATCHDOG_SECONDS = 2.0


class GatedStore:
    """The agent's store, except that the main loop's look at active drops waits on a gate
    the test holds: the loop is stuck exactly as a hung detection step would leave it."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.open = threading.Event()
        self.open.set()
        self.waiting = threading.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def active(self) -> list[Drop]:
        if threading.current_thread().name == "odx-agent-main" and not self.open.is_set():
            self.waiting.set()
            self.open.wait(30)
            self.waiting.clear()
        return self._store.active()


@pytest.fixture
def node(tmp_path: Path) -> Iterator[SimulatedNode]:
    with SimulatedNode(tmp_path / "node", processing_seconds=0.1) as sim:
        yield sim


@pytest.fixture
def notify_socket() -> Iterator[NotifySocket]:
    receiver = NotifySocket()
    yield receiver
    receiver.close()


def _gated_agent(
    tmp_path: Path, node: SimulatedNode, notifier: SystemdNotifier | None = None
) -> tuple[Agent, GatedStore]:
    config = write_config(tmp_path, [{"name": "sim", "url": node.url}], [watch("farm")])
    add_drop(tmp_path, "farm", "flight-1")
    agent = Agent(load_config(config), notifier=notifier)
    agent.heartbeat.max_age_seconds = WATCHDOG_SECONDS
    gate = GatedStore(agent.runtime.store)
    agent.runtime.store = cast(Store, gate)
    agent.start()
    return agent, gate


def _health(agent: Agent) -> tuple[int, dict[str, Any]]:
    status, body = http_get(f"http://{agent.runtime.config.metrics.listen}/healthz")
    return status, json.loads(body)


def test_healthz_is_503_while_the_loop_is_blocked_and_200_again_after(
    tmp_path: Path, node: SimulatedNode
) -> None:
    agent, gate = _gated_agent(tmp_path, node)
    try:
        wait_for(lambda: agent.runtime.store.all()[0].final)
        status, details = _health(agent)
        assert status == 200
        assert details["ok"] is True
        assert details["state_file"] == "ok"
        assert details["nodes"] == {"sim": True}
        assert details["max_age_seconds"] == WATCHDOG_SECONDS

        gate.open.clear()
        assert gate.waiting.wait(5)
        status, details = wait_for(lambda: _unhealthy(agent), timeout=10)
        assert status == 503
        assert details["ok"] is False
        assert details["last_beat_age_seconds"] > WATCHDOG_SECONDS

        gate.open.set()
        status, details = wait_for(lambda: _healthy(agent), timeout=10)
        assert details["ok"] is True
    finally:
        gate.open.set()
        agent.stop()


def _unhealthy(agent: Agent) -> tuple[int, dict[str, Any]] | None:
    answer = _health(agent)
    return answer if answer[0] == 503 else None


def _healthy(agent: Agent) -> tuple[int, dict[str, Any]] | None:
    answer = _health(agent)
    return answer if answer[0] == 200 else None


def test_a_blocked_loop_stops_the_watchdog_pings(
    tmp_path: Path, node: SimulatedNode, notify_socket: NotifySocket
) -> None:
    notifier = SystemdNotifier(notify_socket.path, watchdog_usec=str(int(WATCHDOG_SECONDS * 1e6)))
    agent, gate = _gated_agent(tmp_path, node, notifier)
    try:
        wait_for(lambda: len(notify_socket.pings()) >= 2, timeout=10)
        gate.open.clear()
        assert gate.waiting.wait(5)
        blocked_at = time.monotonic()
        time.sleep(WATCHDOG_SECONDS * 1.5)  # the silence itself is what is tested
        silent = [at for at in notify_socket.pings() if at > blocked_at]
        assert silent == []
        gate.open.set()
        resumed_at = time.monotonic()
        wait_for(lambda: [at for at in notify_socket.pings() if at > resumed_at], timeout=5)
    finally:
        gate.open.set()
        agent.stop()
    assert notify_socket.texts()[0] == "READY=1"
    assert notify_socket.texts()[-1] == "STOPPING=1"
