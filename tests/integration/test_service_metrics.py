"""The daemon's /metrics over HTTP as drops pass: exact values, and a bounded series count."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from odx_agent import __version__
from odx_agent.agent import Agent
from odx_agent.config import load_config
from odx_agent.metrics import DROP_STATES
from odx_agent.simnode import SimulatedNode
from odx_agent.states import DropState
from tests.support.servicekit import add_drop, sample, scrape, wait_for, watch, write_config

ARCHIVE_BYTES = (
    (Path(__file__).parents[2] / "odx_agent" / "simnode" / "data" / "sample-all.zip").stat().st_size
)


@pytest.fixture
def node(tmp_path: Path) -> Iterator[SimulatedNode]:
    with SimulatedNode(tmp_path / "node", processing_seconds=0.1, max_parallel_tasks=8) as sim:
        yield sim


def _agent(tmp_path: Path, node: SimulatedNode) -> Agent:
    config = write_config(
        tmp_path,
        [{"name": "sim", "url": node.url, "max_active_tasks": 8}],
        [watch("farm")],
        max_parallel_uploads=4,
    )
    agent = Agent(load_config(config))
    agent.start()
    return agent


def _finished(agent: Agent, count: int) -> bool:
    drops = agent.runtime.store.all()
    return len(drops) == count and all(drop.final for drop in drops)


def test_metrics_follow_two_completed_drops_and_one_failed(
    tmp_path: Path, node: SimulatedNode
) -> None:
    add_drop(tmp_path, "farm", "flight-1", images=3)
    add_drop(tmp_path, "farm", "flight-2", images=4)
    bad = add_drop(tmp_path, "farm", "flight-bad", images=2)
    (bad / "odx.yaml").write_text("options:\n  feature-quality: extreme\n")
    (bad / ".ready").touch()  # after the ticket, so the drop is judged with it
    agent = _agent(tmp_path, node)
    try:
        wait_for(lambda: _finished(agent, 3))
        listen = agent.runtime.config.metrics.listen
        drops = {drop.name: drop for drop in agent.runtime.store.all()}
        samples = wait_for(lambda: _settled(listen))
    finally:
        agent.stop()

    assert {name: drop.state for name, drop in drops.items()} == {
        "flight-1": DropState.COMPLETED,
        "flight-2": DropState.COMPLETED,
        "flight-bad": DropState.FAILED,
    }
    assert "feature-quality" in (drops["flight-bad"].error or "")
    for state in DROP_STATES:
        expected = {"completed": 2.0, "failed": 1.0}.get(state, 0.0)
        assert sample(samples, "odx_agent_drops", watch="farm", state=state) == expected
    finished = "odx_agent_drops_finished_total"
    assert sample(samples, finished, watch="farm", result="completed") == 2.0
    assert sample(samples, finished, watch="farm", result="failed") == 1.0
    assert sample(samples, finished, watch="farm", result="canceled") == 0.0

    uploaded = sum(
        (Path(drops[name].path) / file).stat().st_size
        for name in ("flight-1", "flight-2")
        for file in drops[name].files
    )
    assert drops["flight-1"].files == ["DJI_0001.JPG", "DJI_0002.JPG", "DJI_0003.JPG"]
    assert sample(samples, "odx_agent_upload_bytes_total") == uploaded
    assert sample(samples, "odx_agent_download_bytes_total") == 2 * ARCHIVE_BYTES

    stages = {"wait": 3.0, "queue": 2.0, "upload": 2.0, "processing": 2.0, "download": 2.0}
    for stage, count in stages.items():
        assert sample(samples, "odx_agent_stage_duration_seconds_count", stage=stage) == count
    assert sample(samples, "odx_agent_node_up", node="sim") == 1.0
    last = max(drops[name].finished_at or 0.0 for name in ("flight-1", "flight-2"))
    assert sample(samples, "odx_agent_last_success_timestamp_seconds", watch="farm") == last
    assert sample(samples, "odx_agent_build_info", version=__version__) == 1.0
    assert sample(samples, "odx_agent_oldest_active_drop_seconds") == 0.0


def _settled(listen: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float] | None:
    """Scrape until the last download's byte count and node probe are in."""
    samples = scrape(listen)
    if sample(samples, "odx_agent_node_up", node="sim") != 1.0:
        return None
    return samples


@pytest.mark.slow
def test_series_count_stays_the_same_over_fifty_more_drops(
    tmp_path: Path, node: SimulatedNode
) -> None:
    add_drop(tmp_path, "farm", "first", images=2)
    agent = _agent(tmp_path, node)
    try:
        wait_for(lambda: _finished(agent, 1))
        listen = agent.runtime.config.metrics.listen
        before = set(scrape(listen))
        for index in range(50):
            add_drop(tmp_path, "farm", f"more-{index:02d}", images=2)
        wait_for(lambda: _finished(agent, 51), timeout=100)
        after = scrape(listen)
    finally:
        agent.stop()
    assert set(after) == before
    assert sample(after, "odx_agent_drops_finished_total", watch="farm", result="completed") == 51
    assert sample(after, "odx_agent_download_bytes_total") == 51 * ARCHIVE_BYTES
