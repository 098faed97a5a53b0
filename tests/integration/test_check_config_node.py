"""check-config asks a node for its options and checks presets and drops' tickets."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from odx_agent.simnode import SimulatedNode
from tests.support.agenttest import make_drop, watch, write_config


def check(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "odx_agent", "check-config", "-c", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=config.parent,
    )


def test_presets_and_tickets_are_checked_against_the_node(tmp_path: Path) -> None:
    with SimulatedNode(tmp_path / "node") as node:
        config = write_config(tmp_path, node.url, [watch(tmp_path, "farm-a", preset="fast")])
        (tmp_path / "presets" / "fast.yaml").write_text(
            "feature-quality: superb\nfast-orthophoto: true\n"
        )
        drop = tmp_path / "ingest/farm-a/flight-9"
        make_drop(drop, 2)
        (drop / "odx.yaml").write_text("options:\n  dsm: maybe\n")
        result = check(config)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "presets/fast.yaml: feature-quality: 'superb' is not one of ultra, high, medium, "
        "low, lowest",
        "flight-9/odx.yaml: options.dsm: 'maybe' is not a boolean (true or false)",
    ]


def test_a_valid_setup_passes_and_an_unreachable_node_is_noted(tmp_path: Path) -> None:
    with SimulatedNode(tmp_path / "node") as node:
        url = node.url
        config = write_config(tmp_path, url, [watch(tmp_path, "farm-a", preset="fast")])
        (tmp_path / "presets" / "fast.yaml").write_text("fast-orthophoto: true\n")
        passed = check(config)
    assert passed.returncode == 0, passed.stderr
    assert passed.stdout.strip().endswith("valid (1 watches, 1 nodes)")
    unreachable = check(config)  # the node is gone now
    assert unreachable.returncode == 0
    assert unreachable.stderr.startswith("node main: not checked against its options")
