"""Shared fixtures of the fault tests: a simulated node, a fault proxy in front of it and
an agent process layout, each torn down within a bounded time."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from odx_agent.simnode import SimulatedNode
from tests.support.agentproc import AgentLayout, AgentProcess
from tests.support.faultproxy import FaultProxy


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "simnode(**settings): SimulatedNode settings for the sim_node fixture"
    )


@pytest.fixture
def layout(tmp_path: Path) -> AgentLayout:
    """Folders, state file and metrics port for one agent under test."""
    return AgentLayout(tmp_path / "agent")


@pytest.fixture
def agent(layout: AgentLayout) -> Iterator[AgentProcess]:
    """An agent process (not started yet); killed at the end whatever happened."""
    process = AgentProcess(layout)
    yield process
    process.kill()


@pytest.fixture
def node_dir(tmp_path: Path) -> Path:
    return tmp_path / "node"


@pytest.fixture
def sim_node(request: pytest.FixtureRequest, node_dir: Path) -> Iterator[SimulatedNode]:
    """A simulated node in this process, quick to process and running tasks in parallel;
    a ``simnode(...)`` mark on the test changes its settings."""
    settings: dict[str, Any] = {"processing_seconds": 0.5, "max_parallel_tasks": 8}
    marker = request.node.get_closest_marker("simnode")
    if marker is not None:
        settings.update(marker.kwargs)
    node = SimulatedNode(node_dir, **settings)
    node.start()
    yield node
    node.stop()


@pytest.fixture
def proxy(sim_node: SimulatedNode) -> Iterator[FaultProxy]:
    """A fault proxy in front of the simulated node; the agent talks through it."""
    with FaultProxy("127.0.0.1", sim_node.port) as fault_proxy:
        yield fault_proxy
