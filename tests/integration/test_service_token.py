"""The node token never leaves the daemon: a real ``odx-agent run`` at DEBUG with JSON logs
goes through every error path (node down, wrong token, 5xx echoing the token, a node that
never answers), and nothing it writes, serves or shows carries the token."""

from __future__ import annotations

import json
import secrets
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from odx_agent.simnode import SimulatedNode
from odx_agent.store import InstanceLock
from tests.support.servicekit import (
    AGENT,
    add_drop,
    agent_process,
    free_port,
    http_get,
    wait_for,
    watch,
    write_config,
)

TOKEN = secrets.token_urlsafe(24)
WRONG_TOKEN = secrets.token_urlsafe(24)


@pytest.fixture
def node(tmp_path: Path) -> Iterator[SimulatedNode]:
    with SimulatedNode(tmp_path / "node", token=TOKEN, processing_seconds=0.2) as sim:
        yield sim


@pytest.fixture
def black_hole() -> Iterator[int]:
    """A listening socket that never accepts: connections open, answers never come."""
    with socket.socket() as hole:
        hole.bind(("127.0.0.1", 0))
        hole.listen(16)
        yield int(hole.getsockname()[1])


def _leaks(data: bytes) -> list[str]:
    return [
        label
        for label, secret in (("token", TOKEN), ("wrong token", WRONG_TOKEN))
        if secret.encode() in data
    ]


def _status(config: Path, *extra: str) -> bytes:
    done = subprocess.run(
        [*AGENT, "status", "-c", str(config), *extra],
        capture_output=True,
        timeout=60,
        check=True,
        env={"COLUMNS": "300", "PATH": "/usr/bin:/bin"},
    )
    return done.stdout + done.stderr


@pytest.mark.slow
def test_the_token_appears_nowhere_on_any_error_path(
    tmp_path: Path, node: SimulatedNode, black_hole: int
) -> None:
    (tmp_path / "token").write_text(TOKEN + "\n")
    closed = free_port()
    config = write_config(
        tmp_path,
        [
            {"name": "a-down", "url": f"http://127.0.0.1:{closed}", "token_file": "token"},
            {"name": "b-hole", "url": f"http://127.0.0.1:{black_hole}", "token_file": "token"},
            {"name": "c-wrong", "url": f"{node.url}/?token={WRONG_TOKEN}"},
            {"name": "d-good", "url": node.url, "token_file": "token"},
        ],
        [watch("farm")],
        log={"level": "DEBUG", "format": "json"},
    )
    echo = f"<html>proxy error for /task/new/init?token={TOKEN} ({TOKEN})</html>".encode()
    node.inject("POST", "/task/new/init", status=500, body=echo, count=1)
    node.inject("GET", "/task/", status=502, body=echo, count=1)
    add_drop(tmp_path, "farm", "flight-1")
    bad = add_drop(tmp_path, "farm", "flight-bad", images=2)
    (bad / "odx.yaml").write_text("options:\n  feature-quality: extreme\n")
    (bad / ".ready").touch()
    stderr = tmp_path / "agent.log"
    listen = _listen(config)
    state_file = tmp_path / "state.sqlite"
    seen: dict[str, bytes] = {}
    with agent_process(config, stderr) as process:
        rows = wait_for(lambda: _final_rows(config), timeout=90)
        wait_for(lambda: b"timed out" in stderr.read_bytes(), timeout=60)
        seen["metrics"] = http_get(f"http://{listen}/metrics")[1]
        seen["healthz"] = http_get(f"http://{listen}/healthz")[1]
        seen["cmdline"] = Path(f"/proc/{process.pid}/cmdline").read_bytes()
        seen["title"] = Path(f"/proc/{process.pid}/comm").read_bytes()
        seen["status"] = _status(config)
        seen["status --json"] = _status(config, "--json")
        for suffix in ("", "-wal"):
            path = Path(f"{state_file}{suffix}")
            if path.exists():
                seen[f"state file{suffix} (running)"] = path.read_bytes()
    assert process.returncode == 0
    for suffix in ("", "-wal"):
        path = Path(f"{state_file}{suffix}")
        if path.exists():
            seen[f"state file{suffix} (stopped)"] = path.read_bytes()
    for report in (tmp_path / "results").rglob("odx-report.json"):
        seen[str(report)] = report.read_bytes()
    log = stderr.read_bytes()
    seen["log"] = log

    assert {row["drop"]: row["state"] for row in rows} == {
        "flight-1": "completed",
        "flight-bad": "failed",
    }
    assert len([name for name in seen if name.endswith("odx-report.json")]) == 2
    lines = [json.loads(line) for line in log.splitlines() if line.startswith(b"{")]
    assert len(lines) == len(log.splitlines())  # every line is JSON
    events = [line.get("event", "") for line in lines]
    assert "odx-agent running" in events
    unreachable = {
        line["node"] for line in lines if line["event"] == "node unreachable, waiting for it"
    }
    assert {"a-down", "b-hole", "c-wrong"} <= unreachable
    assert b"***" in log  # the 5xx page and the request lines were masked, not dropped
    assert any(line.get("level") == "debug" for line in lines)
    assert {name: _leaks(data) for name, data in seen.items() if _leaks(data)} == {}


def _listen(config: Path) -> str:
    from odx_agent.config import load_config

    return load_config(config).metrics.listen


def _final_rows(config: Path) -> list[dict[str, object]] | None:
    rows: list[dict[str, object]] = json.loads(_status(config, "--json"))
    finals = {"completed", "failed", "canceled"}
    return rows if len(rows) == 2 and all(row["state"] in finals for row in rows) else None


def test_plain_http_to_another_host_is_warned_about_at_start_up(tmp_path: Path) -> None:
    (tmp_path / "token").write_text(TOKEN + "\n")
    config = write_config(
        tmp_path,
        # TEST-NET-1: never routed. The state file is locked below, so the daemon stops
        # right after its start-up checks and sends nothing anywhere.
        [{"url": "http://192.0.2.1:3000", "token_file": "token", "max_active_tasks": 1}],
        [watch("farm")],
        log={"level": "DEBUG", "format": "json"},
    )
    lock = InstanceLock(Path(f"{tmp_path / 'state.sqlite'}.lock"))
    lock.acquire()
    try:
        done = subprocess.run(
            [*AGENT, "run", "-c", str(config)], capture_output=True, timeout=60, check=False
        )
    finally:
        lock.release()
    assert done.returncode == 1
    lines = [json.loads(line) for line in done.stderr.splitlines() if line.startswith(b"{")]
    [warning] = [line for line in lines if "plain http" in line["event"]]
    assert warning["level"] == "warning"
    assert warning["node"] == "main"
    assert warning["host"] == "192.0.2.1"
    assert b"already running" in done.stderr
    assert _leaks(done.stdout + done.stderr) == []
