"""The operator commands as real processes: run, status, retry, cancel and their exit codes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from odx_agent.simnode import SimulatedNode
from tests.support.agenttest import make_drop, node_tasks, wait_for, watch, write_config

STATUS_KEYS = {
    "id",
    "watch",
    "drop",
    "state",
    "task_uuid",
    "node",
    "images",
    "error",
    "output",
    "created_at",
    "updated_at",
}


def odx(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "odx_agent", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def status(config: Path) -> list[dict[str, object]]:
    result = odx("status", "-c", str(config), "--json", cwd=config.parent)
    assert result.returncode == 0, result.stderr
    rows: list[dict[str, object]] = json.loads(result.stdout)
    return rows


@pytest.fixture
def node(tmp_path: Path) -> Iterator[SimulatedNode]:
    with SimulatedNode(tmp_path / "node", processing_seconds=0.3, max_parallel_tasks=4) as sim:
        yield sim


@pytest.fixture
def daemon(tmp_path: Path, node: SimulatedNode) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    config = write_config(tmp_path, node.url, [watch(tmp_path, "farm-a")])
    process = subprocess.Popen(
        [sys.executable, "-m", "odx_agent", "run", "-c", str(config)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    wait_for(lambda: (tmp_path / "state.sqlite").exists(), timeout=20)
    try:
        yield process, config
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=15)


def wait_state(config: Path, drop: str, state: str, timeout: float = 30) -> dict[str, object]:
    def found() -> dict[str, object] | None:
        rows = [r for r in status(config) if r["drop"] == drop and r["state"] == state]
        return rows[-1] if rows else None

    row: dict[str, object] = wait_for(found, timeout=timeout, interval=0.3)
    return row


def test_status_json_follows_the_contract(
    tmp_path: Path, daemon: tuple[subprocess.Popen[str], Path]
) -> None:
    _process, config = daemon
    make_drop(tmp_path / "ingest/farm-a/flight-1", 3)
    row = wait_state(config, "flight-1", "completed")
    assert set(row) == STATUS_KEYS
    assert isinstance(row["id"], int)
    assert (row["watch"], row["node"], row["images"], row["error"]) == ("farm-a", "main", 3, None)
    assert row["output"] == str(tmp_path / "results/farm-a/flight-1")
    assert isinstance(row["task_uuid"], str)
    for key in ("created_at", "updated_at"):
        assert isinstance(row[key], str)
        assert str(row[key]).endswith("Z")
    make_drop(tmp_path / "ingest/farm-a/flight-1b", 2)
    wait_state(config, "flight-1b", "completed")
    printed = odx("status", "-c", str(config), "--json", cwd=tmp_path).stdout.splitlines()
    # one drop per line, so `grep flight-1b` finds a whole object
    assert [printed[0], printed[-1]] == ["[", "]"]
    assert [json.loads(line.rstrip(","))["drop"] for line in printed[1:-1]] == [
        "flight-1",
        "flight-1b",
    ]
    table = odx("status", "-c", str(config), cwd=tmp_path)
    assert table.returncode == 0
    assert "flight-1" in table.stdout
    assert "completed" in table.stdout


def test_retry_runs_a_failed_drop_again_under_a_new_task(
    tmp_path: Path, daemon: tuple[subprocess.Popen[str], Path], node: SimulatedNode
) -> None:
    _process, config = daemon
    folder = tmp_path / "ingest/farm-a/flight-2"
    make_drop(folder, 2, marker=None)
    (folder / "odx.yaml").write_text("options:\n  dsm: maybe\n")
    (folder / ".ready").write_text("")
    failed = wait_state(config, "flight-2", "failed")
    assert "dsm" in str(failed["error"])

    refused = odx("retry", "-c", str(config), "999", cwd=tmp_path)
    assert (refused.returncode, refused.stderr.strip()) == (1, "odx-agent: no drop with id 999")

    (folder / "odx.yaml").write_text("options:\n  dsm: true\n")
    accepted = odx("retry", "-c", str(config), str(failed["id"]), cwd=tmp_path)
    assert accepted.returncode == 0, accepted.stderr
    done = wait_state(config, "flight-2", "completed")
    assert done["id"] == failed["id"]
    report = json.loads((tmp_path / "results/farm-a/flight-2/odx-report.json").read_text())
    assert (report["attempt"], report["state"]) == (2, "completed")
    assert [info["name"] for info in node_tasks(node.url).values()] == ["farm-a/flight-2"]
    earlier = [p.name for p in (tmp_path / "results/farm-a").iterdir()]
    assert len(earlier) == 2  # the failed attempt's report moved aside, not deleted


def test_cancel_stops_a_processing_drop_and_its_node_task(tmp_path: Path) -> None:
    with SimulatedNode(tmp_path / "node", processing_seconds=60) as slow:
        config = write_config(tmp_path, slow.url, [watch(tmp_path, "farm-a")])
        process = subprocess.Popen(
            [sys.executable, "-m", "odx_agent", "run", "-c", str(config)],
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            make_drop(tmp_path / "ingest/farm-a/long", 2)
            row = wait_state(config, "long", "processing")
            result = odx("cancel", "-c", str(config), str(row["id"]), cwd=tmp_path)
            assert result.returncode == 0, result.stderr
            canceled = wait_state(config, "long", "canceled")
            assert canceled["error"] == "canceled by the operator"
            (info,) = node_tasks(slow.url).values()
            assert info["status"]["code"] == 50
            again = odx("cancel", "-c", str(config), str(row["id"]), cwd=tmp_path)
            assert again.returncode == 1
            assert "already canceled" in again.stderr
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=15)


def test_sigterm_stops_within_ten_seconds_with_exit_code_zero(
    daemon: tuple[subprocess.Popen[str], Path],
) -> None:
    process, config = daemon
    wait_for(lambda: status(config) == [], timeout=10)
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=15) == 0
    assert time.monotonic() - started < 10


def test_second_run_on_the_same_state_file_exits_with_a_clear_message(
    tmp_path: Path, daemon: tuple[subprocess.Popen[str], Path]
) -> None:
    _process, config = daemon
    wait_for(lambda: (tmp_path / "state.sqlite.lock").exists(), timeout=10)
    time.sleep(0.5)
    second = odx("run", "-c", str(config), cwd=tmp_path)
    assert second.returncode == 1
    assert "another odx-agent is already running on this state file" in second.stderr


def test_run_refuses_an_invalid_config_with_exit_code_two(tmp_path: Path) -> None:
    (tmp_path / "agent.yaml").write_text("state_file: s.sqlite\nnodes: []\nwatches: nope\n")
    result = odx("run", "-c", "agent.yaml", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.splitlines()[0].startswith("agent.yaml: ")


def test_sighup_with_a_broken_config_keeps_the_running_one(
    tmp_path: Path, daemon: tuple[subprocess.Popen[str], Path]
) -> None:
    process, config = daemon
    good = config.read_text()
    config.write_text(good + "\nbogus_key: 1\n")
    os.kill(process.pid, signal.SIGHUP)
    time.sleep(1.0)
    assert process.poll() is None
    config.write_text(good)  # for the status command below; the daemon is not told
    make_drop(tmp_path / "ingest/farm-a/after-reload", 2)
    wait_state(config, "after-reload", "completed")
