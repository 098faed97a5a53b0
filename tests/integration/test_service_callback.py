"""The fast path: the node calls a per-task URL when a task ends, and the agent polls at once."""

from __future__ import annotations

import http.client
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from odx_agent.agent import Agent
from odx_agent.agent.callback import KEY_BYTES, CallbackSecrets, key_path
from odx_agent.config import load_config
from odx_agent.simnode import SimulatedNode
from odx_agent.states import DropState
from tests.support.servicekit import (
    add_drop,
    free_port,
    http_get,
    http_post,
    wait_for,
    watch,
    write_config,
)

PROCESSING_SECONDS = 2.0


@pytest.fixture
def node(tmp_path: Path) -> Iterator[SimulatedNode]:
    with SimulatedNode(tmp_path / "node", processing_seconds=PROCESSING_SECONDS) as sim:
        yield sim


def _config(tmp_path: Path, node: SimulatedNode, port: int) -> Path:
    return write_config(
        tmp_path,
        [{"name": "sim", "url": node.url}],
        [watch("farm")],
        poll_interval_seconds=30.0,
        rescan_seconds=30.0,
        callback_url=f"http://127.0.0.1:{port}/agent",
        callback_listen=f"127.0.0.1:{port}",
    )


def test_a_finished_task_is_fetched_at_once_and_forged_calls_are_refused(
    tmp_path: Path, node: SimulatedNode
) -> None:
    port = free_port()
    config = _config(tmp_path, node, port)
    add_drop(tmp_path, "farm", "flight-1")
    agent = Agent(load_config(config))
    agent.start()
    try:
        drop = wait_for(lambda: _completed(agent), timeout=20)
        assert drop.committed_at is not None
        assert drop.finished_at is not None
        # a poll every 30 s would take that long; the node's call brings it in at once
        assert drop.finished_at - drop.committed_at < PROCESSING_SECONDS + 4

        state_file = tmp_path / "state.sqlite"
        key_file = key_path(state_file)
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        key = key_file.read_bytes()
        assert len(key) == KEY_BYTES
        secrets = CallbackSecrets(f"http://127.0.0.1:{port}/agent", key)
        assert drop.task_uuid is not None
        valid = secrets.url(drop.task_uuid)
        assert valid.startswith(f"http://127.0.0.1:{port}/agent/odx-callback/{drop.task_uuid}/")

        base = f"http://127.0.0.1:{port}"
        other_task = str(uuid.uuid4())
        assert http_post(valid[: -len(secrets.secret(drop.task_uuid))] + "0" * 64) == 403
        assert http_post(valid[: -len(secrets.secret(drop.task_uuid))]) == 403
        assert (
            http_post(f"{base}/agent/odx-callback/{other_task}/{secrets.secret(drop.task_uuid)}")
            == 403
        )
        assert http_post(f"{base}/agent/odx-callback/not-a-uuid/x") == 404
        assert http_post(f"{base}/metrics") == 404
        assert http_get(valid)[0] == 404
        assert _post_declared(port, valid, 10 * 1024 * 1024) == 413
        assert http_post(valid, b'{"status": {"code": 40}}') == 200
    finally:
        agent.stop()

    # the URLs given to the node before a restart still work after it
    restarted = Agent(load_config(config))
    restarted.start()
    try:
        assert http_post(valid) == 200
        assert http_post(valid[:-1] + ("0" if valid[-1] != "0" else "1")) == 403
    finally:
        restarted.stop()


def _completed(agent: Agent) -> object:
    drops = agent.runtime.store.all()
    return drops[0] if drops and drops[0].state == DropState.COMPLETED else None


def _post_declared(port: int, url: str, length: int) -> int:
    """POST with a large Content-Length and no body: refused before anything is read."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.putrequest("POST", url.split(str(port), 1)[1])
        connection.putheader("Content-Length", str(length))
        connection.endheaders()
        return connection.getresponse().status
    finally:
        connection.close()


def test_without_a_callback_the_node_gets_no_webhook(tmp_path: Path, node: SimulatedNode) -> None:
    config = write_config(tmp_path, [{"name": "sim", "url": node.url}], [watch("farm")])
    add_drop(tmp_path, "farm", "flight-1")
    agent = Agent(load_config(config))
    agent.start()
    try:
        wait_for(lambda: _completed(agent), timeout=20)
    finally:
        agent.stop()
    assert not key_path(tmp_path / "state.sqlite").exists()
