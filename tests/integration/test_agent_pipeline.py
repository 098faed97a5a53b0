"""The agent end to end: real folders, a real state file, the simulated node over HTTP."""

from __future__ import annotations

import json
import os
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from odx_agent.simnode import SimulatedNode
from odx_agent.states import DropState
from tests.support.agenttest import (
    make_drop,
    node_tasks,
    options_of,
    running_agent,
    wait_final,
    wait_for,
    watch,
    write_config,
)

ARCHIVE = Path(__file__).parents[2] / "odx_agent" / "simnode" / "data" / "sample-all.zip"


@pytest.fixture
def node(tmp_path: Path) -> Iterator[SimulatedNode]:
    with SimulatedNode(tmp_path / "node", processing_seconds=0.3, max_parallel_tasks=4) as sim:
        yield sim


def assert_equals_archive(folder: Path) -> None:
    with zipfile.ZipFile(ARCHIVE) as archive:
        expected = {
            info.filename: archive.read(info) for info in archive.infolist() if not info.is_dir()
        }
    found = {
        str(path.relative_to(folder)): path.read_bytes()
        for path in folder.rglob("*")
        if path.is_file() and path.name != "odx-report.json"
    }
    assert found == expected


def stored_files(node_dir: Path, task_uuid: str) -> list[str]:
    root = node_dir / task_uuid
    return sorted(path.name for path in root.rglob("*") if path.is_file())


def test_two_watches_with_their_presets_complete_with_outputs_and_reports(
    tmp_path: Path, node: SimulatedNode
) -> None:
    config = write_config(
        tmp_path,
        node.url,
        [watch(tmp_path, "farm-a", preset="ortho-fast"), watch(tmp_path, "farm-b", preset="dsm")],
    )
    (tmp_path / "presets" / "base.yaml").write_text("feature-quality: medium\n")
    (tmp_path / "presets" / "ortho-fast.yaml").write_text(
        "extends: base\nfast-orthophoto: true\northophoto-resolution: 5\n"
    )
    (tmp_path / "presets" / "dsm.yaml").write_text("dsm: true\n")
    names_a = make_drop(tmp_path / "ingest/farm-a/flight-1", 3)
    names_b = make_drop(tmp_path / "ingest/farm-b/flight-2", 2)

    with running_agent(config) as agent:
        drops = wait_final(agent, 2)

    assert sorted((d.watch, d.name, d.state) for d in drops) == [
        ("farm-a", "flight-1", DropState.COMPLETED),
        ("farm-b", "flight-2", DropState.COMPLETED),
    ]
    tasks = node_tasks(node.url)
    assert len(tasks) == 2
    by_name = {info["name"]: info for info in tasks.values()}
    a, b = by_name["farm-a/flight-1"], by_name["farm-b/flight-2"]
    assert options_of(a)["fast-orthophoto"] is True
    assert options_of(a)["orthophoto-resolution"] == 5
    assert options_of(a)["feature-quality"] == "medium"
    assert options_of(b)["dsm"] is True
    assert (a["imagesCount"], b["imagesCount"]) == (3, 2)
    assert stored_files(tmp_path / "node", a["uuid"]) == names_a

    for drop, names in ((d, names_a if d.watch == "farm-a" else names_b) for d in drops):
        output = tmp_path / "results" / drop.watch / drop.name
        assert drop.output == str(output)
        assert_equals_archive(output)
        report = json.loads((output / "odx-report.json").read_text())
        assert report["schema_version"] == 1
        assert (report["drop"], report["watch"], report["state"]) == (
            drop.name,
            drop.watch,
            "completed",
        )
        assert report["attempt"] == 1
        assert report["task_uuid"] == drop.task_uuid
        assert report["node"] == "main"
        assert report["images"] == len(names)
        assert report["files"] == names
        assert report["error"] is None
        assert set(report["timings"]) == {"wait", "queue", "upload", "processing", "download"}
        assert all(value is not None and value >= 0 for value in report["timings"].values())
        assert report["created_at"].endswith("Z")
        assert report["finished_at"].endswith("Z")
        assert report["node_output_tail"][-1] == "Compressing all.zip"
        assert len(report["node_output_tail"]) == 50
    for watch_name in ("farm-a", "farm-b"):
        assert sorted(p.name for p in (tmp_path / "results" / watch_name).iterdir()) == [
            "flight-1" if watch_name == "farm-a" else "flight-2"
        ]


def test_ticket_overrides_preset_options_and_names_the_task(
    tmp_path: Path, node: SimulatedNode
) -> None:
    config = write_config(tmp_path, node.url, [watch(tmp_path, "farm-a", preset="ortho-fast")])
    (tmp_path / "presets" / "ortho-fast.yaml").write_text("orthophoto-resolution: 5\n")
    (tmp_path / "presets" / "dsm.yaml").write_text("dsm: true\n")
    drop = tmp_path / "ingest/farm-a/north"
    make_drop(drop, 2, marker=None)
    (drop / "odx.yaml").write_text(
        "preset: dsm\noptions:\n  orthophoto-resolution: 2\nname: North field\n"
    )
    (drop / ".ready").write_text("")

    with running_agent(config) as agent:
        (finished,) = wait_final(agent, 1)

    assert finished.state == DropState.COMPLETED
    (info,) = node_tasks(node.url).values()
    assert info["name"] == "farm-a/north: North field"
    assert options_of(info)["dsm"] is True
    assert options_of(info)["orthophoto-resolution"] == 2
    report = json.loads((tmp_path / "results/farm-a/north/odx-report.json").read_text())
    assert report["options"] == {"dsm": True, "orthophoto-resolution": 2}
    assert "odx.yaml" not in report["files"]


def test_bad_option_value_and_unknown_option_fail_alone_before_any_upload(
    tmp_path: Path, node: SimulatedNode
) -> None:
    config = write_config(tmp_path, node.url, [watch(tmp_path, "farm-a")])
    bad_value = tmp_path / "ingest/farm-a/bad-value"
    make_drop(bad_value, 2, marker=None)
    (bad_value / "odx.yaml").write_text("options:\n  feature-quality: superb\n")
    unknown = tmp_path / "ingest/farm-a/unknown"
    make_drop(unknown, 2, marker=None)
    (unknown / "odx.yaml").write_text("options:\n  orthophoto-resolutoin: 2\n")
    make_drop(tmp_path / "ingest/farm-a/good", 2)
    (bad_value / ".ready").write_text("")
    (unknown / ".ready").write_text("")

    with running_agent(config) as agent:
        drops = {d.name: d for d in wait_final(agent, 3)}

    assert drops["good"].state == DropState.COMPLETED
    assert drops["bad-value"].state == DropState.FAILED
    assert drops["unknown"].state == DropState.FAILED
    assert "feature-quality" in (drops["bad-value"].error or "")
    assert "superb" in (drops["bad-value"].error or "")
    assert "ultra, high, medium, low, lowest" in (drops["bad-value"].error or "")
    assert "orthophoto-resolutoin" in (drops["unknown"].error or "")
    assert "orthophoto-resolution" in (drops["unknown"].error or "")
    # nothing was uploaded for the failed drops: the node holds only the good one
    assert [info["name"] for info in node_tasks(node.url).values()] == ["farm-a/good"]
    assert ("POST", "/task/new/init") in node.requests_seen()
    inits = [r for r in node.requests_seen() if r == ("POST", "/task/new/init")]
    assert len(inits) == 1
    for name in ("bad-value", "unknown"):
        report = json.loads((tmp_path / f"results/farm-a/{name}/odx-report.json").read_text())
        assert report["state"] == "failed"
        assert report["task_uuid"] is None
        assert report["error"] == drops[name].error


def test_hidden_partial_and_other_files_are_not_uploaded_and_are_reported(
    tmp_path: Path, node: SimulatedNode
) -> None:
    config = write_config(tmp_path, node.url, [watch(tmp_path, "farm-a")])
    drop = tmp_path / "ingest/farm-a/mixed"
    make_drop(drop, 2, marker=None)
    (drop / "sub").mkdir()
    (drop / "sub" / "IMG_9000.jpeg").write_bytes(b"x" * 500)
    (drop / "gcp_list.txt").write_text("EPSG:4326\n")
    (drop / ".hidden.JPG").write_bytes(b"h" * 10)
    (drop / ".cache").mkdir()
    (drop / ".cache" / "IMG_7.JPG").write_bytes(b"c" * 10)
    (drop / "late.JPG.part").write_bytes(b"p" * 10)
    (drop / "notes.docx").write_bytes(b"n" * 10)
    (drop / "old.JPG~").write_bytes(b"o" * 10)
    os.symlink("/etc/passwd", drop / "link.JPG")
    (drop / ".ready").write_text("")

    with running_agent(config) as agent:
        (finished,) = wait_final(agent, 1)

    assert finished.state == DropState.COMPLETED, finished.error
    (info,) = node_tasks(node.url).values()
    assert info["imagesCount"] == 3
    assert stored_files(tmp_path / "node", info["uuid"]) == [
        "IMG_0000.JPG",
        "IMG_0001.JPG",
        "IMG_9000.jpeg",
        "gcp_list.txt",
    ]
    report = json.loads((tmp_path / "results/farm-a/mixed/odx-report.json").read_text())
    assert report["files"] == ["IMG_0000.JPG", "IMG_0001.JPG", "sub/IMG_9000.jpeg", "gcp_list.txt"]
    assert report["images"] == 3
    assert report["ignored"] == [
        ".cache/ (hidden folder)",
        ".hidden.JPG (hidden)",
        "late.JPG.part (temporary file)",
        "link.JPG (symbolic link)",
        "notes.docx (not an image)",
        "old.JPG~ (temporary file)",
    ]


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({}, "0 images found, at least 2 needed"),
        ({"readme.txt": b"x", "photo.heic": b"y"}, "0 images found, at least 2 needed (2 other"),
        ({"A.JPG": b"a", "B.JPG": b""}, "empty (zero-byte) images: B.JPG"),
        ({"A.JPG": b"a", "x/B.JPG": b"b", "y/B.JPG": b"c"}, "same file name in different folders"),
    ],
)
def test_unusable_drops_fail_with_a_clear_reason_while_others_complete(
    tmp_path: Path, node: SimulatedNode, files: dict[str, bytes], message: str
) -> None:
    config = write_config(tmp_path, node.url, [watch(tmp_path, "farm-a")])
    bad = tmp_path / "ingest/farm-a/bad"
    bad.mkdir()
    for name, content in files.items():
        (bad / name).parent.mkdir(parents=True, exist_ok=True)
        (bad / name).write_bytes(content)
    (bad / ".ready").write_text("")
    make_drop(tmp_path / "ingest/farm-a/good", 2)

    with running_agent(config) as agent:
        drops = {d.name: d for d in wait_final(agent, 2)}

    assert drops["good"].state == DropState.COMPLETED
    assert drops["bad"].state == DropState.FAILED
    assert message in (drops["bad"].error or "")
    report = json.loads((tmp_path / "results/farm-a/bad/odx-report.json").read_text())
    assert report["error"] == drops["bad"].error


def test_settle_only_watch_waits_for_quiet(tmp_path: Path, node: SimulatedNode) -> None:
    entry = watch(tmp_path, "quiet", ready={"marker": None, "settle_seconds": 1.5})
    config = write_config(tmp_path, node.url, [entry])
    folder = tmp_path / "ingest/quiet/flight"
    make_drop(folder, 2, marker=None)

    with running_agent(config) as agent:
        store = agent.runtime.store
        drop = wait_for(lambda: store.all())[0]
        # keep the drop busy for a while: it must stay waiting
        for index in range(6):
            (folder / f"MORE_{index}.JPG").write_bytes(b"m" * 100)
            time.sleep(0.3)
            assert store.get(drop.id).state == DropState.WAITING
        (finished,) = wait_final(agent, 1, timeout=20)

    assert finished.state == DropState.COMPLETED
    assert finished.images == 8
    assert (finished.ready_at or 0) - (finished.changed_at or 0) >= 1.5


def test_restart_reprocesses_nothing(tmp_path: Path, node: SimulatedNode) -> None:
    config = write_config(tmp_path, node.url, [watch(tmp_path, "farm-a")])
    make_drop(tmp_path / "ingest/farm-a/one", 2)
    make_drop(tmp_path / "ingest/farm-a/two", 2)
    with running_agent(config) as agent:
        before = wait_final(agent, 2)
    tasks_before = node_tasks(node.url)
    with running_agent(config) as agent:
        agent.wake()
        wait_for(lambda: agent.heartbeat.age() < 0.5)
        time.sleep(2.5)  # more than a rescan interval
        after = agent.runtime.store.all()
    assert [(d.id, d.state, d.task_uuid) for d in after] == [
        (d.id, d.state, d.task_uuid) for d in before
    ]
    assert node_tasks(node.url).keys() == tasks_before.keys()


def test_rewritten_marker_is_a_new_version_and_moves_earlier_results_aside(
    tmp_path: Path, node: SimulatedNode
) -> None:
    config = write_config(tmp_path, node.url, [watch(tmp_path, "farm-a")])
    folder = tmp_path / "ingest/farm-a/field"
    make_drop(folder, 2)
    with running_agent(config) as agent:
        wait_final(agent, 1)
        (folder / "IMG_0002.JPG").write_bytes(b"new" * 100)
        marker = folder / ".ready"
        stat = marker.stat()
        os.utime(marker, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
        drops = wait_final(agent, 2)
    assert [(d.name, d.state, d.images) for d in drops] == [
        ("field", DropState.COMPLETED, 2),
        ("field", DropState.COMPLETED, 3),
    ]
    outputs = sorted(p.name for p in (tmp_path / "results/farm-a").iterdir())
    assert outputs[0] == "field"
    assert len(outputs) == 2
    assert outputs[1].startswith("field@")
    assert len(node_tasks(node.url)) == 2


def test_second_agent_on_the_same_state_file_is_refused(
    tmp_path: Path, node: SimulatedNode
) -> None:
    from odx_agent.agent import Agent
    from odx_agent.config import load_config
    from odx_agent.store import StoreError

    config = write_config(tmp_path, node.url, [watch(tmp_path, "farm-a")])
    with running_agent(config), pytest.raises(StoreError, match="already running"):
        Agent(load_config(config))
