"""The agent facing a node that forgets tasks, answers garbage or serves a hostile archive."""

from __future__ import annotations

import hashlib
import io
import json
import time
import zipfile
from pathlib import Path

import requests
import yaml
from structlog.testing import capture_logs

from odx_agent.simnode import SimulatedNode
from odx_agent.states import DropState
from odx_agent.store import Drop
from tests.support.agenttest import (
    make_drop,
    node_tasks,
    running_agent,
    wait_final,
    wait_for,
    watch,
    write_config,
)


def test_a_task_the_node_forgets_is_submitted_once_more_then_failed(tmp_path: Path) -> None:
    with SimulatedNode(tmp_path / "node", processing_seconds=30) as node:
        config = write_config(tmp_path, node.url, [watch(tmp_path, "farm-a")])
        with running_agent(config) as agent:
            store = agent.runtime.store
            make_drop(tmp_path / "ingest/farm-a/flight", 2)
            forgotten = []
            for _ in range(2):
                drop = wait_for(
                    lambda: next(
                        (
                            d
                            for d in store.all()
                            if d.state == DropState.PROCESSING and d.task_uuid not in forgotten
                        ),
                        None,
                    )
                )
                forgotten.append(drop.task_uuid)
                answer = requests.post(
                    f"{node.url}/task/remove", data={"uuid": drop.task_uuid}, timeout=5
                )
                assert answer.json() == {"success": True}
            (failed,) = wait_final(agent, 1)
    assert failed.state == DropState.FAILED
    assert failed.error == (
        f"the node no longer knows task {forgotten[1]}, and it was already submitted again once"
    )
    assert failed.resubmits == 1


def test_html_and_broken_answers_are_retried_until_the_node_answers_properly(
    tmp_path: Path,
) -> None:
    with SimulatedNode(tmp_path / "node", processing_seconds=0.3) as node:
        node.inject("GET", "/task/", status=502, body=b"<html>Bad Gateway</html>", count=2)
        node.inject(
            "GET", "/task/", status=200, body=b"{not json", content_type="application/json", count=1
        )
        config = write_config(tmp_path, node.url, [watch(tmp_path, "farm-a")])
        with running_agent(config) as agent:
            make_drop(tmp_path / "ingest/farm-a/flight", 2)
            (done,) = wait_final(agent, 1)
            retries = agent.metrics.registry.get_sample_value(
                "odx_agent_errors_total", {"kind": "server"}
            )
    assert done.state == DropState.COMPLETED
    assert retries == 3.0


def _tree_digest(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def test_a_hostile_archive_fails_the_drop_and_writes_nothing_outside(tmp_path: Path) -> None:
    hostile = tmp_path / "hostile.zip"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("odm_orthophoto/odm_orthophoto.tif", b"fine")
        archive.writestr("../../sentinel/owned.txt", b"escaped")
    hostile.write_bytes(buffer.getvalue())
    sentinel = tmp_path / "sentinel"
    sentinel.mkdir()
    (sentinel / "keep.txt").write_text("untouched")
    before = _tree_digest(sentinel)

    with SimulatedNode(tmp_path / "node", processing_seconds=0.2, archive=hostile) as node:
        config = write_config(tmp_path, node.url, [watch(tmp_path, "farm-a")])
        with running_agent(config) as agent:
            make_drop(tmp_path / "ingest/farm-a/flight", 2)
            (failed,) = wait_final(agent, 1)
    assert failed.state == DropState.FAILED
    assert "'../../sentinel/owned.txt'" in (failed.error or "")
    assert _tree_digest(sentinel) == before
    output = tmp_path / "results" / "farm-a"
    assert sorted(p.name for p in output.iterdir()) == ["flight"]
    assert sorted(p.name for p in (output / "flight").iterdir()) == ["odx-report.json"]
    report = json.loads((output / "flight" / "odx-report.json").read_text())
    assert report["state"] == "failed"


def test_a_finished_drop_of_a_settle_only_watch_that_changes_is_reported_not_redone(
    tmp_path: Path,
) -> None:
    entry = watch(tmp_path, "quiet", ready={"marker": None, "settle_seconds": 0.3})
    with SimulatedNode(tmp_path / "node", processing_seconds=0.2) as node:
        config = write_config(tmp_path, node.url, [entry], rescan_seconds=0.5)
        with running_agent(config) as agent:
            folder = tmp_path / "ingest/quiet/flight"
            make_drop(folder, 2, marker=None)
            (done,) = wait_final(agent, 1)
            (folder / "LATE.JPG").write_bytes(b"late" * 100)
            changed = wait_for(
                lambda: agent.runtime.store.get(done.id).changed_after_finish, timeout=10
            )
            time.sleep(1.5)  # several rescans
            drops = agent.runtime.store.all()
        tasks = node_tasks(node.url)
    assert changed is True
    assert [(d.id, d.state) for d in drops] == [(done.id, DropState.COMPLETED)]
    assert len(tasks) == 1


def test_after_a_restart_without_its_node_an_upload_moves_on_and_a_task_waits(
    tmp_path: Path,
) -> None:
    """The daemon stops with one drop processing and one half uploaded on node "main", and
    starts again with only node "fresh" in its file. The half upload starts again on
    "fresh" and completes; the task on "main" waits with a message saying what to do, and
    the operator's cancel still works."""
    with (
        SimulatedNode(tmp_path / "main-node", processing_seconds=60) as gone,
        SimulatedNode(tmp_path / "fresh-node", processing_seconds=0.2) as fresh,
    ):
        config = write_config(tmp_path, gone.url, [watch(tmp_path, "farm")])
        with running_agent(config) as agent:
            store = agent.runtime.store
            make_drop(tmp_path / "ingest/farm/processing", 2)
            wait_for(lambda: [d for d in store.all() if d.state == DropState.PROCESSING])
            gone.inject("POST", "/task/new/upload/", status=500, body=b"busy", count=10_000)
            make_drop(tmp_path / "ingest/farm/uploading", 2)
            half = wait_for(
                lambda: next(
                    (d for d in store.all() if d.name == "uploading" and d.task_uuid), None
                )
            )
            wait_for(  # its upload has begun, and fails: the daemon stops in the middle
                lambda: ("POST", f"/task/new/upload/{half.task_uuid}") in gone.requests_seen()
            )
        document = yaml.safe_load(config.read_text())
        document["nodes"] = [{"name": "fresh", "url": fresh.url}]
        config.write_text(yaml.safe_dump(document))

        with capture_logs() as logs, running_agent(config) as agent:
            store = agent.runtime.store

            def drop(name: str) -> Drop:
                return next(d for d in store.all() if d.name == name)

            wait_for(lambda: drop("uploading").state == DropState.COMPLETED)
            waiting = wait_for(
                lambda: (
                    "not in the configuration" in (drop("processing").error or "")
                    and drop("processing")
                )
            )
            store.request(waiting.id, "cancel", now=time.time())
            wait_for(lambda: drop("processing").state == DropState.CANCELED)
            uploaded = drop("uploading")
            fresh_tasks = list(node_tasks(fresh.url).values())
    assert waiting.state == DropState.PROCESSING
    assert waiting.error == (
        "node 'main' is not in the configuration: add it back to finish this drop, "
        "or cancel the drop and retry it"
    )
    assert uploaded.node == "fresh"
    [task] = fresh_tasks
    assert task["imagesCount"] == 2
    moved = [e for e in logs if e["event"].startswith("its node is no longer configured")]
    assert [(e["drop"], e["node"]) for e in moved] == [("uploading", "main")]
