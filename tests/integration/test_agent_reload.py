"""Reloading the configuration while drops are in flight; polling mode."""

from __future__ import annotations

import time
from pathlib import Path

import yaml

from odx_agent.simnode import SimulatedNode
from odx_agent.states import DropState
from tests.support.agenttest import (
    make_drop,
    running_agent,
    wait_final,
    wait_for,
    watch,
    write_config,
)


def test_a_removed_watch_stops_detecting_and_its_drop_in_flight_finishes(tmp_path: Path) -> None:
    with SimulatedNode(tmp_path / "node", processing_seconds=1.5) as node:
        config = write_config(
            tmp_path, node.url, [watch(tmp_path, "farm-a"), watch(tmp_path, "farm-b")]
        )
        with running_agent(config) as agent:
            store = agent.runtime.store
            make_drop(tmp_path / "ingest/farm-b/in-flight", 2)
            wait_for(lambda: [d for d in store.all() if d.state == DropState.PROCESSING])
            document = yaml.safe_load(config.read_text())
            document["watches"] = [w for w in document["watches"] if w["name"] == "farm-a"]
            config.write_text(yaml.safe_dump(document))
            agent.reload()
            wait_for(lambda: [w.name for w in agent.runtime.config.watches] == ["farm-a"])
            make_drop(tmp_path / "ingest/farm-b/after", 2)
            make_drop(tmp_path / "ingest/farm-a/kept", 2)
            wait_final(agent, 2)
            time.sleep(1.0)  # a few turns: the removed watch must not pick up "after"
            drops = {(d.watch, d.name): d.state for d in store.all()}
    assert drops == {
        ("farm-b", "in-flight"): DropState.COMPLETED,
        ("farm-a", "kept"): DropState.COMPLETED,
    }
    assert (tmp_path / "results/farm-b/in-flight/odx-report.json").is_file()


def test_an_invalid_reload_keeps_the_running_configuration(tmp_path: Path) -> None:
    with SimulatedNode(tmp_path / "node", processing_seconds=0.2) as node:
        config = write_config(tmp_path, node.url, [watch(tmp_path, "farm-a")])
        with running_agent(config) as agent:
            before = agent.runtime.config
            config.write_text(config.read_text() + "\nwatches: 3\n")
            agent.reload()
            wait_for(
                lambda: (
                    agent.metrics.registry.get_sample_value(
                        "odx_agent_errors_total", {"kind": "config"}
                    )
                    == 1.0
                ),
                timeout=10,
            )
            assert agent.runtime.config is before
            make_drop(tmp_path / "ingest/farm-a/still-watched", 2)
            (done,) = wait_final(agent, 1)
    assert done.state == DropState.COMPLETED


def test_poll_mode_finds_drops_without_file_events(tmp_path: Path) -> None:
    with SimulatedNode(tmp_path / "node", processing_seconds=0.2) as node:
        config = write_config(tmp_path, node.url, [watch(tmp_path, "nfs", mode="poll")])
        with running_agent(config) as agent:
            make_drop(tmp_path / "ingest/nfs/flight", 2)
            (done,) = wait_final(agent, 1)
    assert done.state == DropState.COMPLETED
