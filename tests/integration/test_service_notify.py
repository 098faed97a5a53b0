"""Notifications from the running daemon: a webhook and a command get each finished drop's
report; a failing webhook is retried with backoff, never blocks other drops, and what is
undelivered at a stop is delivered after the restart."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from odx_agent.agent import Agent
from odx_agent.agent.report import REPORT_NAME
from odx_agent.config import load_config
from odx_agent.simnode import SimulatedNode
from odx_agent.states import DropState
from odx_agent.store import Notification
from tests.support.servicekit import Receiver, add_drop, wait_for, watch, write_config

RECORDER = """\
import json, os, sys
payload = sys.stdin.read()
env = {key: value for key, value in os.environ.items() if key.startswith("ODX_")}
with open(sys.argv[1], "a") as out:
    out.write(json.dumps({"stdin": json.loads(payload), "env": env}) + "\\n")
"""


class OffsetClock:
    """Wall-clock time that a test can move forward, to skip a retry's wait."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@pytest.fixture
def node(tmp_path: Path) -> Iterator[SimulatedNode]:
    with SimulatedNode(tmp_path / "node", processing_seconds=0.1, max_parallel_tasks=4) as sim:
        yield sim


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as hook:
        yield hook


def _completed(agent: Agent, names: set[str]) -> bool:
    done = {d.name for d in agent.runtime.store.all() if d.state == DropState.COMPLETED}
    return names <= done


def test_webhook_and_command_get_the_report_of_each_finished_drop(
    tmp_path: Path, node: SimulatedNode, receiver: Receiver
) -> None:
    script = tmp_path / "recorder.py"
    script.write_text(RECORDER)
    recorded = tmp_path / "recorded.jsonl"
    command = [sys.executable, str(script), str(recorded)]
    config = write_config(
        tmp_path,
        [{"name": "sim", "url": node.url}],
        [watch("north"), watch("south", notify={"command": command})],
        notify={"webhook": receiver.url},
    )
    add_drop(tmp_path, "north", "flight-n")
    add_drop(tmp_path, "south", "flight-s")
    agent = Agent(load_config(config))
    agent.start()
    try:
        wait_for(lambda: _completed(agent, {"flight-n", "flight-s"}))
        wait_for(lambda: not agent.runtime.store.pending_notifications())
    finally:
        agent.stop()

    [posted] = receiver.delivered()
    report = json.loads((tmp_path / "results" / "north" / "flight-n" / REPORT_NAME).read_text())
    assert set(posted) == set(report) | {"event", "output"}
    assert posted["event"] == "completed"
    assert posted["output"] == str(tmp_path / "results" / "north" / "flight-n")
    for key in ("drop", "watch", "attempt", "state", "task_uuid", "node", "images", "files"):
        assert posted[key] == report[key], key

    [line] = recorded.read_text().splitlines()
    call = json.loads(line)
    south = json.loads((tmp_path / "results" / "south" / "flight-s" / REPORT_NAME).read_text())
    assert set(call["stdin"]) == set(south) | {"event", "output"}
    assert call["stdin"]["task_uuid"] == south["task_uuid"]
    assert call["env"] == {
        "ODX_EVENT": "completed",
        "ODX_WATCH": "south",
        "ODX_DROP": "flight-s",
        "ODX_STATE": "completed",
        "ODX_TASK_UUID": south["task_uuid"],
        "ODX_OUTPUT": str(tmp_path / "results" / "south" / "flight-s"),
        "ODX_ERROR": "",
    }


def test_a_failing_webhook_is_retried_survives_a_restart_and_never_blocks_drops(
    tmp_path: Path, node: SimulatedNode, receiver: Receiver
) -> None:
    receiver.status = 500
    config = _failing_webhook_setup(tmp_path, node, receiver)
    clock = OffsetClock()
    agent = Agent(load_config(config), clock=clock)
    agent.start()
    try:
        wait_for(lambda: _completed(agent, {"flight-1"}))
        [first] = wait_for(lambda: _tried(agent, times=1))
        assert "HTTP 500" in (first.last_error or "")
        # the first retry waits between 2.5 and 5 seconds
        assert 0 < first.next_attempt_at - clock() <= 5.0

        # the pipeline goes on while the webhook fails
        add_drop(tmp_path, "north", "flight-2")
        wait_for(lambda: _completed(agent, {"flight-1", "flight-2"}))
        wait_for(lambda: len(agent.runtime.store.pending_notifications()) == 2)

        clock.offset += 5.0
        [again, _] = wait_for(lambda: _tried(agent, times=2, of=2))
        assert again.drop_id == first.drop_id
        assert 0 < again.next_attempt_at - clock() <= 10.0
        assert receiver.delivered() == []
    finally:
        agent.stop()
    attempts_before_restart = receiver.attempts()

    receiver.status = 200
    restarted = Agent(load_config(config), clock=clock)
    restarted.start()
    try:
        clock.offset += 3600.0
        wait_for(lambda: not restarted.runtime.store.pending_notifications())
    finally:
        restarted.stop()
    delivered = receiver.delivered()
    assert sorted(payload["drop"] for payload in delivered) == ["flight-1", "flight-2"]
    assert {payload["event"] for payload in delivered} == {"completed"}
    assert receiver.attempts() == attempts_before_restart + 2


def test_a_webhook_undelivered_past_the_give_up_time_is_dropped_with_an_error(
    tmp_path: Path, node: SimulatedNode, receiver: Receiver
) -> None:
    receiver.status = 503
    config = _failing_webhook_setup(tmp_path, node, receiver, give_up_after_hours=2)
    clock = OffsetClock()
    agent = Agent(load_config(config), clock=clock)
    with capture_logs() as logs:
        agent.start()
        try:
            wait_for(lambda: _completed(agent, {"flight-1"}))
            [first] = wait_for(lambda: _tried(agent, times=1))
            clock.offset += 3600.0  # within the two hours: retried
            wait_for(lambda: _tried(agent, times=2))
            clock.offset += 3600.0  # two hours after it was queued: given up
            wait_for(lambda: not agent.runtime.store.pending_notifications())
            failures = agent.metrics.registry.get_sample_value(
                "odx_agent_errors_total", {"kind": "notify"}
            )
        finally:
            agent.stop()
    assert receiver.attempts() == 3
    assert receiver.delivered() == []
    assert failures == 3.0
    given_up = [entry for entry in logs if entry["event"].startswith("notification given up")]
    assert [(e["log_level"], e["drop_id"], e["attempts"]) for e in given_up] == [
        ("error", first.drop_id, 3)
    ]
    assert "HTTP 503" in given_up[0]["error"]


def _failing_webhook_setup(
    tmp_path: Path, node: SimulatedNode, receiver: Receiver, **settings: object
) -> Path:
    """Write a config whose one watch notifies ``receiver`` of completed drops, add one
    drop ("flight-1") to it, and return the config's path."""
    config = write_config(
        tmp_path,
        [{"name": "sim", "url": node.url}],
        [watch("north")],
        notify={"webhook": receiver.url, "events": ["completed"]},
        **settings,
    )
    add_drop(tmp_path, "north", "flight-1")
    return config


def _tried(agent: Agent, *, times: int, of: int = 1) -> list[Notification] | None:
    """Return the pending notifications once ``of`` of them are there and the first was
    tried ``times`` times."""
    pending = agent.runtime.store.pending_notifications()
    if len(pending) == of and pending[0].attempts == times:
        return pending
    return None
