"""Exact end-state checks for fault tests: what the node holds, what landed in the output
folders, what was left behind, and whether the state file is sound.

Each check raises AssertionError with the numbers that differ, so a failing fault test
says what was lost, doubled or left over.
"""

from __future__ import annotations

import json
import os
import sqlite3
import urllib.request
import zipfile
from collections import Counter
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from odx_agent.agent.report import REPORT_NAME

LEFTOVER_MARKERS = (".odx-staging-", ".all.zip.", ".tmp", ".part")


def sample_archive() -> Path:
    """Return the archive every simulated-node task serves."""
    return Path(str(resources.files("odx_agent.simnode").joinpath("data/sample-all.zip")))


def node_get(node_url: str, path: str) -> Any:
    """Given the node's URL and a path, return its JSON answer."""
    with urllib.request.urlopen(f"{node_url}{path}", timeout=10) as answer:
        return json.loads(answer.read())


def node_tasks(node_url: str) -> dict[str, dict[str, Any]]:
    """Return ``/task/{uuid}/info`` of every task ``/task/list`` names, by UUID."""
    return {
        entry["uuid"]: node_get(node_url, f"/task/{entry['uuid']}/info")
        for entry in node_get(node_url, "/task/list")
    }


def assert_one_task_per_drop(
    node_url: str,
    data_dir: Path,
    expected: Mapping[str, Mapping[str, bytes] | Iterable[str]],
    *,
    watch: str = "w",
) -> dict[str, str]:
    """Given the node, its data folder and, per drop name, the file names it must hold
    (or name -> content), check the node holds exactly one task per drop carrying exactly
    those files (byte for byte when contents are given) and no other task. Return the
    task UUID of each drop."""
    tasks = node_tasks(node_url)
    by_name = Counter(info["name"] for info in tasks.values())
    wanted = {f"{watch}/{name}" for name in expected}
    doubled = {name: count for name, count in by_name.items() if count > 1}
    assert not doubled, f"drops with more than one task on the node: {doubled}"
    assert set(by_name) == wanted, f"tasks on the node {sorted(by_name)} != drops {sorted(wanted)}"
    uuids: dict[str, str] = {}
    for task_uuid, info in tasks.items():
        drop = info["name"].split("/", 1)[1]
        uuids[drop] = task_uuid
        files = expected[drop]
        names = set(files)
        stored = data_dir / task_uuid / "images"
        held = {path.name for path in stored.iterdir()}
        assert held == names, f"task of {drop} holds {sorted(held)}, expected {sorted(names)}"
        assert info["imagesCount"] == len(names), (
            f"task of {drop}: imagesCount {info['imagesCount']}, expected {len(names)}"
        )
        if isinstance(files, Mapping):
            for name, content in files.items():
                assert (stored / name).read_bytes() == content, f"{drop}/{name} differs"
    return uuids


def assert_output_is_archive(folder: Path, *, archive: Path | None = None) -> dict[str, Any]:
    """Given a drop's output folder, check it holds exactly the archive's members (names,
    sizes, bytes) plus the report; return the report."""
    with zipfile.ZipFile(archive or sample_archive()) as source:
        members = {info.filename.rstrip("/"): info for info in source.infolist() if info.filename}
        expected_files = {name for name, info in members.items() if not info.is_dir()}
        found_files: set[str] = set()
        for current, _folders, files in os.walk(folder):
            for name in files:
                relative = os.path.relpath(os.path.join(current, name), folder)
                found_files.add(relative)
        assert found_files == expected_files | {REPORT_NAME}, (
            f"{folder}: missing {sorted(expected_files - found_files)[:5]}, "
            f"extra {sorted(found_files - expected_files - {REPORT_NAME})[:5]}"
        )
        for name in expected_files:
            data = source.read(members[name])
            assert (folder / name).read_bytes() == data, f"{folder}/{name} differs"
    report: dict[str, Any] = json.loads((folder / REPORT_NAME).read_text())
    return report


def leftovers(*roots: Path) -> list[str]:
    """Return every path under ``roots`` that looks like a temporary or partial file."""
    found: list[str] = []
    for root in roots:
        for current, folders, files in os.walk(root):
            for name in [*folders, *files]:
                temporary = name.startswith(LEFTOVER_MARKERS) or name.endswith((".tmp", ".part"))
                if temporary or name == "all.zip":
                    found.append(os.path.join(current, name))
    return found


def integrity_check(state_file: Path) -> str:
    """Return ``PRAGMA integrity_check`` of the state file (``ok`` when sound)."""
    connection = sqlite3.connect(state_file)
    try:
        return str(connection.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        connection.close()
