"""What a reload keeps, retires and grows: the node pool and the worker pools."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from odx_agent.agent.errors import NodeNotConfigured
from odx_agent.agent.nodes import NodePool
from odx_agent.agent.reloading import GrowingPool, restart_only_changes
from odx_agent.config import NodeConfig, load_config
from odx_agent.metrics import AgentMetrics
from tests.support.agenttest import write_config


def _node(name: str, url: str = "http://127.0.0.1:3000", token: str = "") -> NodeConfig:
    return NodeConfig(name=name, base_url=url, token=token, max_active_tasks=2)


def _pool(*nodes: NodeConfig) -> NodePool:
    metrics = AgentMetrics(watches=[], nodes=[n.name for n in nodes], version="0")
    return NodePool(nodes, metrics=metrics, clock=lambda: 1000.0)


def test_unchanged_nodes_keep_their_client_and_health_changed_ones_get_a_new_client() -> None:
    pool = _pool(_node("a"), _node("b", token="old"))
    pool.mark("a", up=False)
    client_a, client_b = pool.client("a"), pool.client("b")

    again = pool.reconfigured([_node("a"), _node("b", token="rotated")], in_use=())

    assert again.client("a") is client_a
    assert again.handle("a").up is False
    assert again.client("b") is not client_b
    assert again.client("b").token == "rotated"
    assert again.handle("b").up is None


def test_a_removed_node_in_use_is_retired_never_picked_then_forgotten() -> None:
    pool = _pool(_node("a"), _node("gone", url="http://127.0.0.1:3001"))
    gone_client = pool.client("gone")

    retired = pool.reconfigured([_node("a")], in_use={"gone"})
    assert retired.names == ["a"]
    assert retired.retired == ["gone"]
    assert retired.client("gone") is gone_client  # its drops in flight carry on
    assert retired.pick({}) == "a"
    assert retired.pick({"a": 2}) is None  # "a" is full; "gone" takes nothing new
    assert "gone" not in retired.describe()

    back = retired.reconfigured([_node("a"), _node("gone", url="http://127.0.0.1:3001")], ())
    assert back.client("gone") is gone_client
    assert back.retired == []

    forgotten = retired.reconfigured([_node("a")], in_use=())
    assert forgotten.retired == []
    with pytest.raises(NodeNotConfigured, match="node 'gone' is not in the configuration"):
        forgotten.client("gone")


def test_a_grown_pool_runs_new_jobs_beside_those_still_running() -> None:
    pool = GrowingPool(1, "grow-test")
    release = threading.Event()
    started = threading.Semaphore(0)

    def job() -> None:
        started.release()
        assert release.wait(10)

    try:
        first = pool.submit(job)
        assert started.acquire(timeout=5)
        assert pool.grow(1) is False
        assert pool.grow(0) is False
        assert pool.grow(3) is True
        assert pool.size == 3
        later = [pool.submit(job) for _ in range(2)]
        assert started.acquire(timeout=5)
        assert started.acquire(timeout=5)
        release.set()
        for future in (first, *later):
            future.result(timeout=5)
    finally:
        release.set()
        pool.shutdown()


def test_restart_only_settings_are_named(tmp_path: Path) -> None:
    running = load_config(write_config(tmp_path, "http://127.0.0.1:3000", []))
    loaded = running.model_copy(
        update={
            "state_file": tmp_path / "elsewhere.sqlite",
            "callback_url": "http://10.0.0.5:9478",
            "max_parallel_uploads": 9,  # applies at once: not named
        }
    )
    assert restart_only_changes(running, running) == []
    assert restart_only_changes(running, loaded) == ["state_file", "callback_url"]


def test_shutdown_drops_jobs_still_queued_in_the_pool_it_grew_out_of() -> None:
    pool = GrowingPool(1, "grow-test")
    release = threading.Event()
    started = threading.Event()

    def job() -> bool:
        started.set()
        return release.wait(10)

    try:
        running = pool.submit(job)
        assert started.wait(5)
        queued = pool.submit(job)  # behind the first, in the old pool
        pool.grow(2)
        pool.shutdown()
        assert queued.cancelled()
        assert not running.cancelled()
    finally:
        release.set()
    assert running.result(timeout=5) is True
