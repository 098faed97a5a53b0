"""Building blocks for tests that run the real agent in-process against the simulated node."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests
import yaml

from odx_agent.agent import Agent
from odx_agent.config import load_config
from odx_agent.states import FINAL_STATES
from odx_agent.store import Drop


def write_config(base: Path, node_url: str, watches: list[dict[str, Any]], **extra: Any) -> Path:
    """Write agent.yaml under ``base`` with fast timings; return its path."""
    document: dict[str, Any] = {
        "state_file": "state.sqlite",
        "nodes": [{"name": "main", "url": node_url, "max_active_tasks": 4}],
        "presets_dir": "presets",
        "poll_interval_seconds": 0.2,
        "rescan_seconds": 2,
        "metrics": {"listen": "127.0.0.1:0"},
        "watches": watches,
        **extra,
    }
    (base / "presets").mkdir(exist_ok=True)
    path = base / "agent.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def watch(base: Path, name: str, **settings: Any) -> dict[str, Any]:
    """Return a watch entry whose folders live under ``base`` (the watch folder is made)."""
    (base / "ingest" / name).mkdir(parents=True, exist_ok=True)
    entry: dict[str, Any] = {
        "name": name,
        "path": f"ingest/{name}",
        "output": f"results/{name}",
        "ready": {"marker": ".ready", "settle_seconds": 0},
    }
    entry.update(settings)
    return entry


def make_drop(
    folder: Path, images: int = 2, *, marker: str | None = ".ready", size: int = 700
) -> list[str]:
    """Write ``images`` small JPEG-named files (and the marker); return their names."""
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for index in range(images):
        name = f"IMG_{index:04d}.JPG"
        (folder / name).write_bytes(bytes([index % 256]) * size)
        names.append(name)
    if marker:
        (folder / marker).write_text("")
    return names


@contextmanager
def running_agent(config_path: Path, **kwargs: Any) -> Iterator[Agent]:
    agent = Agent(load_config(config_path), **kwargs)
    agent.start()
    try:
        yield agent
    finally:
        agent.stop()


def wait_for(predicate: Callable[[], Any], timeout: float = 30.0, interval: float = 0.05) -> Any:
    """Return the first truthy value of ``predicate`` within ``timeout`` seconds, else fail."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")


def wait_final(agent: Agent, count: int, timeout: float = 30.0) -> list[Drop]:
    """Wait until ``count`` drops are in a final state; return all drops."""

    def done() -> list[Drop] | None:
        drops = agent.runtime.store.all()
        finished = [drop for drop in drops if drop.state in FINAL_STATES]
        return drops if len(finished) >= count else None

    result: list[Drop] = wait_for(done, timeout)
    return result


def node_tasks(node_url: str) -> dict[str, dict[str, Any]]:
    """Return every task the node holds, by UUID, with its info."""
    with requests.Session() as session:
        uuids = [item["uuid"] for item in session.get(f"{node_url}/task/list", timeout=5).json()]
        return {
            uuid: session.get(f"{node_url}/task/{uuid}/info", timeout=5).json() for uuid in uuids
        }


def options_of(info: dict[str, Any]) -> dict[str, Any]:
    return {item["name"]: item["value"] for item in info["options"]}
