"""Reloading the configuration while drops are in flight; polling mode."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import yaml

from odx_agent.simnode import SimulatedNode
from odx_agent.states import DropState
from tests.support.agentproc import AgentLayout, AgentProcess
from tests.support.agentproc import make_drop as proc_make_drop
from tests.support.agentproc import wait_for as proc_wait_for
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


def test_reload_retires_a_removed_node_masks_a_new_token_and_names_restart_only_settings(
    tmp_path: Path,
) -> None:
    """A running daemon (a real process, SIGHUP) is moved from one node to another while a
    drop processes on the first. The drop finishes on the node that was removed; the next
    drops go to the new node, whose token the log never shows; the log level follows the
    file; a changed metrics address is named as waiting for a restart, and the old address
    keeps serving."""
    token = "reload-token-5b8e0c1d"
    layout = AgentLayout(tmp_path / "agent")
    agent = AgentProcess(layout)
    with (
        SimulatedNode(tmp_path / "old-node", processing_seconds=2.0) as old,
        SimulatedNode(tmp_path / "new-node", processing_seconds=0.2, token=token) as new,
    ):
        try:
            layout.write_config(old.url, max_parallel_uploads=1, uploads_per_drop=2)
            agent.start()
            proc_make_drop(layout.watch() / "on-old", images=2)
            proc_wait_for(
                lambda: [d for d in agent.drops() if d.state == DropState.PROCESSING],
                timeout=30,
                what="the first drop processing",
            )
            document = yaml.safe_load(layout.config_path.read_text())
            document["nodes"] = [{"name": "fresh", "url": f"{new.url}/?token={token}"}]
            document["log"] = {"level": "WARNING", "format": "json"}
            document["metrics"] = {"listen": "127.0.0.1:1"}
            document["max_parallel_uploads"] = 3
            layout.config_path.write_text(yaml.safe_dump(document))
            logged_before = len(layout.log_path.read_text().splitlines())
            os.kill(agent.pid, signal.SIGHUP)
            proc_wait_for(
                lambda: "takes effect at the next start" in layout.log_path.read_text(),
                timeout=15,
                what="the restart-only warning",
            )
            for index in range(3):
                proc_make_drop(layout.watch() / f"on-new-{index}", images=2, seed=index + 1)
            drops = proc_wait_for(
                lambda: (
                    found
                    if len(found := agent.drops()) == 4
                    and all(d.state == DropState.COMPLETED for d in found)
                    else None
                ),
                timeout=60,
                what="four completed drops",
            )
            assert agent.healthz() == 200  # still on the address it started with
            assert agent.stop() == 0
        finally:
            agent.kill()
    assert {d.name: d.node for d in drops} == {
        "on-old": "sim",
        "on-new-0": "fresh",
        "on-new-1": "fresh",
        "on-new-2": "fresh",
    }
    lines = [json.loads(line) for line in layout.log_path.read_text().splitlines()]
    after = lines[logged_before:]
    assert [(line["event"], line["setting"]) for line in after if "setting" in line] == [
        ("setting changed; it takes effect at the next start", "metrics")
    ]
    # at WARNING, the drops made after the reload complete without a line of their own
    assert [line for line in after if str(line.get("drop", "")).startswith("on-new")] == []
    assert any(line.get("drop") == "on-old" for line in lines[:logged_before])
    assert token not in layout.log_path.read_text()
