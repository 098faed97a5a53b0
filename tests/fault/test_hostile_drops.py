"""Hostile drops: links to the state file and outside the drop, a FIFO, a file still being
written, names with spaces and accents, and drops renamed or deleted in the middle of their
upload. Nothing outside a drop reaches the node, the agent never blocks, the other drops
complete, and each report lists what was ignored."""

from __future__ import annotations

import os
import re
import shutil
import threading
import time
from pathlib import Path

import pytest

from odx_agent.simnode import SimulatedNode
from odx_agent.states import FINAL_STATES, DropState
from tests.support.agentproc import AgentLayout, AgentProcess, make_drop, wait_for
from tests.support.faultproxy import FaultProxy
from tests.support.outcomes import (
    assert_one_task_per_drop,
    assert_output_is_archive,
    integrity_check,
    leftovers,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(150)]

SECRET = b"SECRET-OUTSIDE-THE-DROP-" * 100
UPLOAD = re.compile(rb"^POST /task/new/upload/")


def _by_name(agent: AgentProcess) -> dict[str, DropState]:
    return {drop.name: drop.state for drop in agent.drops()}


def _grow(path: Path, stop: threading.Event, written: list[bytes]) -> None:
    """Append a kilobyte every tenth of a second until stopped, as a slow copy would."""
    with open(path, "ab") as stream:
        while not stop.wait(0.1):
            piece = os.urandom(1024)
            stream.write(piece)
            stream.flush()
            written.append(piece)


def _move_mid_upload(
    agent: AgentProcess, proxy: FaultProxy, folder: Path, change: str
) -> dict[str, bytes]:
    """Write a drop, hold its first upload in the proxy, rename or delete the folder, then
    let the upload go on. Return the drop's images."""
    hold = proxy.hold(UPLOAD)
    images = make_drop(folder, images=4, seed=len(folder.name))
    assert hold.wait_held(20), f"no upload of {folder.name} was seen"
    if change == "rename":
        folder.rename(folder.with_name(folder.name + "-renamed"))
    else:
        shutil.rmtree(folder)
    hold.release()
    wait_for(
        lambda: any(d.name == folder.name and d.state in FINAL_STATES for d in agent.drops()),
        timeout=30,
        what=f"the {change}d drop {folder.name} to end",
    )
    return images


@pytest.mark.simnode(processing_seconds=0.5, max_parallel_tasks=8)
def test_hostile_drops_upload_nothing_from_outside_and_never_block(
    layout: AgentLayout,
    agent: AgentProcess,
    proxy: FaultProxy,
    sim_node: SimulatedNode,
    node_dir: Path,
    tmp_path: Path,
) -> None:
    layout.write_config(proxy.url, uploads_per_drop=1, max_parallel_uploads=2)
    agent.start()
    watch = layout.watch()
    outside = tmp_path / "outside.jpg"
    outside.write_bytes(SECRET)

    # moved away or deleted while its first file is on the wire
    moving = _move_mid_upload(agent, proxy, watch / "moving", "rename")
    _move_mid_upload(agent, proxy, watch / "vanishing", "delete")

    # links, a FIFO and unusual names
    hostile = watch / "hostile"
    names = ["IMG 0001.JPG", "vol d'été 02.JPG", "Ñandú_03.jpg", "日本語04.JPG"]
    hostile_images = make_drop(hostile, names=names, marker=None, seed=3)
    (hostile / "LINK_STATE.JPG").symlink_to(layout.state_file)
    (hostile / "LINK_OUT.JPG").symlink_to(outside)
    (hostile / "sub").mkdir()
    (hostile / "sub" / "LINK_DIR.JPG").symlink_to(tmp_path)
    os.mkfifo(hostile / "PIPE.JPG")

    # a file still being written while its drop is already marked ready
    growing = watch / "growing"
    growing_images = make_drop(growing, images=2, seed=4)
    stop, written = threading.Event(), [b""]
    writer = threading.Thread(target=_grow, args=(growing / "GROW.JPG", stop, written))
    writer.start()
    (hostile / ".ready").write_text("")
    try:
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline:
            assert _by_name(agent).get("growing") in (None, DropState.WAITING)
            assert agent.healthz() == 200
            time.sleep(0.1)
    finally:
        stop.set()
        writer.join(5)
    growing_images["GROW.JPG"] = b"".join(written)

    expected = {"hostile": hostile_images, "growing": growing_images, "moving-renamed": moving}
    wait_for(
        lambda: all(_by_name(agent).get(name) == DropState.COMPLETED for name in expected),
        timeout=40,
        what="the usable drops to complete",
        interval=0.2,
    )
    states = _by_name(agent)
    assert states["moving"] in (DropState.FAILED, DropState.CANCELED)
    assert states["vanishing"] in (DropState.FAILED, DropState.CANCELED)
    errors = {drop.name: drop.error for drop in agent.drops()}
    print(f"\nmoving: {errors['moving']}\nvanishing: {errors['vanishing']}")
    assert "disappeared" in (errors["moving"] or "") or "removed" in (errors["moving"] or "")
    assert agent.stop() == 0

    # the node holds exactly the usable drops' images, byte for byte, and nothing else
    assert_one_task_per_drop(sim_node.url, node_dir, expected)
    for stored in node_dir.rglob("*"):
        if stored.is_file() and not stored.is_symlink():
            content = stored.read_bytes()
            assert SECRET not in content, f"{stored} holds the outside file"
            assert not content.startswith(b"SQLite format"), f"{stored} holds the state file"
    report = assert_output_is_archive(layout.output() / "hostile")
    assert sorted(report["ignored"]) == [
        "LINK_OUT.JPG (symbolic link)",
        "LINK_STATE.JPG (symbolic link)",
        "PIPE.JPG (not a regular file)",
        "sub/LINK_DIR.JPG (symbolic link)",
    ]
    assert sorted(report["files"]) == sorted(names)
    assert assert_output_is_archive(layout.output() / "growing")["ignored"] == []
    assert leftovers(layout.base / "results", layout.base / "ingest") == []
    assert integrity_check(layout.state_file) == "ok"
