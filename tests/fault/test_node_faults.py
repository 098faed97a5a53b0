"""The agent against a node that misbehaves: one that drops half the uploads, one that is
stopped for a while and started again on the same port and data, and a network between
them that lags, throttles, cuts, resets, swallows or drips. Every drop completes, with
exactly its images on the node, within a bounded time once the fault is lifted."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from odx_agent.simnode import SimulatedNode
from odx_agent.states import DropState
from tests.support.agentproc import AgentLayout, AgentProcess, NodeProcess, make_drop, wait_for
from tests.support.faultproxy import FaultProxy
from tests.support.outcomes import (
    assert_one_task_per_drop,
    assert_output_is_archive,
    integrity_check,
    leftovers,
)

pytestmark = [pytest.mark.slow]

UPLOAD_RETRIES = ("odx_agent_retries_total", {"stage": "upload"})
NODE_UP = ("odx_agent_node_up", {"node": "sim"})


def _states(agent: AgentProcess) -> dict[str, DropState]:
    return {drop.name: drop.state for drop in agent.drops()}


def _all_completed(agent: AgentProcess, count: int) -> bool:
    states = _states(agent)
    return len(states) == count and set(states.values()) == {DropState.COMPLETED}


def _check_done(
    layout: AgentLayout, node_url: str, node_dir: Path, expected: dict[str, dict[str, bytes]]
) -> None:
    assert_one_task_per_drop(node_url, node_dir, expected)
    for name in expected:
        assert_output_is_archive(layout.output() / name)
    assert leftovers(layout.base / "results", layout.base / "ingest") == []
    assert integrity_check(layout.state_file) == "ok"


@pytest.mark.timeout(120)
@pytest.mark.simnode(drop_uploads=True, seed=7, processing_seconds=0.5, max_parallel_tasks=4)
def test_flaky_node_that_drops_half_the_uploads(
    layout: AgentLayout, agent: AgentProcess, sim_node: SimulatedNode, node_dir: Path
) -> None:
    layout.write_config(sim_node.url, uploads_per_drop=100, max_parallel_uploads=2)
    agent.start()
    expected = {
        name: make_drop(layout.watch() / name, images=100, size=2048, seed=index)
        for index, name in enumerate(("flight-a", "flight-b"))
    }
    wait_for(lambda: _all_completed(agent, 2), timeout=90, what="both drops", interval=0.2)
    retries = agent.metric(*UPLOAD_RETRIES)
    print(f"\nupload retries: {retries}")
    assert retries is not None
    assert retries > 0
    assert agent.stop() == 0
    _check_done(layout, sim_node.url, node_dir, expected)


@pytest.mark.timeout(120)
def test_node_stopped_during_uploads_and_processing(
    layout: AgentLayout, agent: AgentProcess, tmp_path: Path
) -> None:
    node_dir = tmp_path / "node"
    node = NodeProcess(node_dir, processing_seconds=2.0, max_parallel_tasks=4)
    node.start()
    try:
        layout.write_config(node.url, poll_interval_seconds=0.3, uploads_per_drop=1)
        agent.start()
        expected = {"early": make_drop(layout.watch() / "early", images=3, seed=1)}
        wait_for(
            lambda: _states(agent).get("early") == DropState.PROCESSING,
            timeout=20,
            what="the first drop to be processing",
        )
        expected["late"] = make_drop(layout.watch() / "late", images=120, size=8192, seed=2)
        wait_for(
            lambda: _states(agent).get("late") == DropState.UPLOADING,
            timeout=20,
            what="the second drop to be uploading",
        )
        node.stop()
        stopped_at = time.monotonic()
        at_stop = _states(agent)
        assert at_stop["early"] in (DropState.PROCESSING, DropState.DOWNLOADING)
        assert at_stop["late"] == DropState.UPLOADING
        wait_for(lambda: agent.metric(*NODE_UP) == 0.0, timeout=10, what="node_up 0")
        # stay down for many poll intervals, while the agent keeps answering
        while time.monotonic() - stopped_at < 3.0:
            assert agent.healthz() == 200
            time.sleep(0.2)
        assert _states(agent)["late"] == DropState.UPLOADING
        node.start()
        wait_for(lambda: agent.metric(*NODE_UP) == 1.0, timeout=15, what="node_up 1")
        wait_for(lambda: _all_completed(agent, 2), timeout=60, what="both drops", interval=0.2)
        drops = agent.drops()
        assert [drop.state for drop in drops] == [DropState.COMPLETED] * 2
        assert agent.stop() == 0
        _check_done(layout, node.url, node_dir, expected)
    finally:
        node.stop()


# (the faults in turn, each as (mode, parameters), the longest wait for the drops once the
# last fault is lifted). A black hole and a drip both leave a request without an answer
# until the client's 30 s read timeout, so they share one run to pay that wait once.
NETWORK_FAULTS = [
    ("latency", [("latency", {"seconds": 0.3})], 30.0),
    ("bandwidth", [("bandwidth", {"bytes_per_second": 20_000})], 30.0),
    ("cut_after", [("cut_after", {"bytes": 300})], 30.0),
    ("reset", [("reset", {})], 30.0),
    ("blackhole+drip", [("blackhole", {}), ("drip", {"interval": 1.0})], 60.0),
]
FAULT_SECONDS = 2.0


@pytest.mark.timeout(120)
@pytest.mark.simnode(processing_seconds=1.0, max_parallel_tasks=4)
@pytest.mark.parametrize(
    ("faults", "recovery"),
    [pytest.param(faults, recovery, id=name) for name, faults, recovery in NETWORK_FAULTS],
)
def test_network_fault_between_agent_and_node(
    layout: AgentLayout,
    agent: AgentProcess,
    proxy: FaultProxy,
    sim_node: SimulatedNode,
    node_dir: Path,
    faults: list[tuple[str, dict[str, float]]],
    recovery: float,
) -> None:
    layout.write_config(proxy.url, poll_interval_seconds=0.3, settle_seconds=0.2)
    agent.start()
    # one drop reaches the node first, so the fault meets its polls and its download ...
    expected = {"downloading": make_drop(layout.watch() / "downloading", images=3, seed=1)}
    wait_for(
        lambda: _states(agent).get("downloading") == DropState.PROCESSING,
        timeout=20,
        what="the first drop to be processing",
    )
    # ... and another one arrives just as the fault starts, so it meets the upload
    seen_before = proxy.connections_seen
    for index, (mode, params) in enumerate(faults):
        proxy.set_mode(mode, **params)
        if index == 0:
            expected["uploading"] = make_drop(
                layout.watch() / "uploading", images=6, size=16384, seed=2
            )
        started = time.monotonic()
        while time.monotonic() - started < FAULT_SECONDS:
            assert agent.healthz() == 200, "the agent's loop stopped turning during the fault"
            time.sleep(0.2)
    touched = proxy.connections_seen - seen_before
    proxy.set_mode("pass")
    lifted = time.monotonic()
    wait_for(lambda: _all_completed(agent, 2), timeout=recovery, what="both drops", interval=0.2)
    print(
        f"\n{'+'.join(mode for mode, _ in faults)}: {touched} new connections during the "
        f"fault; drops done {time.monotonic() - lifted:.1f} s after it was lifted; "
        f"upload retries {agent.metric(*UPLOAD_RETRIES)}"
    )
    assert agent.stop() == 0
    _check_done(layout, sim_node.url, node_dir, expected)
