"""A full disk on the output side, for real: the agent runs in a private mount namespace
where its output folder is a small tmpfs. The disk fills during a download, then holds too
little for the extraction; the drop waits in ``downloading`` with a clear error, nothing
partial is left in the output, the daemon and the other watch carry on, and the drop
completes once there is room again. A filesystem short of inodes refuses an extraction
before it writes anything."""

from __future__ import annotations

import errno
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from odx_agent.simnode import SimulatedNode
from odx_agent.states import DropState
from tests.support.agentproc import AgentLayout, AgentProcess, make_drop, wait_for
from tests.support.faultproxy import FaultProxy
from tests.support.outcomes import assert_output_is_archive, integrity_check, leftovers

pytestmark = [pytest.mark.slow, pytest.mark.timeout(150)]

DOWNLOAD = re.compile(rb"^GET /task/[^/ ]+/download/all\.zip")
# Above the agent's 64 MiB pre-download margin, far below its 256 MiB extraction margin.
SMALL_TMPFS = "70m"
LARGE_TMPFS = "400m"
EXTRACTION_MARGIN = 128 * 1024 * 1024
NEEDED = re.compile(r"(\d+) bytes needed")
MOUNT_SCRIPT = 'mount -t tmpfs -o size={size},mode=0755 odx-test-output "$0" && exec "$@"'


def _private_tmpfs_possible(folder: Path) -> str | None:
    """Return why a private tmpfs cannot be mounted here, or None when it can."""
    if shutil.which("unshare") is None or shutil.which("nsenter") is None:
        return "unshare or nsenter is not installed"
    script = MOUNT_SCRIPT.format(size="1m")
    probe = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "sh", "-c", script, str(folder), "true"],
        capture_output=True,
        timeout=10,
    )
    if probe.returncode != 0:
        return f"mounting a tmpfs in a private mount namespace is not permitted: {probe.stderr!r}"
    return None


def _fill(path: Path) -> int:
    """Write ``path`` until its filesystem is full; return the bytes written."""
    written = 0
    with open(path, "wb", buffering=0) as stream:
        for size in (1 << 20, 1 << 12, 1):
            piece = b"\0" * size
            while True:
                try:
                    stream.write(piece)
                except OSError as error:
                    if error.errno != errno.ENOSPC:
                        raise
                    break
                written += size
    return written


def _bytes_needed(row: dict[str, object]) -> int:
    """Return the bytes a free-space error says were needed (0 for any other error)."""
    found = NEEDED.search(str(row["error"] or ""))
    return int(found[1]) if found else 0


def _drop(agent: AgentProcess, name: str) -> dict[str, object]:
    return next(row for row in agent.status_json() if row["drop"] == name)


@pytest.mark.simnode(processing_seconds=0.5, max_parallel_tasks=4)
def test_output_disk_full_waits_and_completes_once_there_is_room(
    tmp_path: Path, proxy: FaultProxy, sim_node: SimulatedNode
) -> None:
    layout = AgentLayout(tmp_path / "agent", watch_names=("full", "other"))
    output = layout.output("full")
    output.mkdir(parents=True)
    reason = _private_tmpfs_possible(output)
    if reason is not None:
        pytest.skip(reason)
    layout.write_config(proxy.url, poll_interval_seconds=0.3, settle_seconds=0.2)
    wrapper = ["unshare", "-m", "--propagation", "private", "sh", "-c"]
    agent = AgentProcess(
        layout, wrapper=[*wrapper, MOUNT_SCRIPT.format(size=SMALL_TMPFS), str(output)]
    )
    try:
        agent.start()
        # the agent's view of its output folder: the tmpfs, invisible from here otherwise
        seen = Path(f"/proc/{agent.pid}/root") / output.relative_to("/")
        assert list(seen.iterdir()) == []

        # 1. the disk fills while the archive is on the wire
        hold = proxy.hold(DOWNLOAD, after_response_bytes=400_000)
        make_drop(layout.watch("full") / "big", images=3, seed=1)
        assert hold.wait_held(30), "the download never started"
        filled = _fill(seen / "filler")
        hold.release()

        def waiting_for_space() -> dict[str, object] | None:
            row = _drop(agent, "big")
            error = str(row["error"] or "")
            return row if row["state"] == "downloading" and "space" in error else None

        row = wait_for(waiting_for_space, timeout=30, what="a disk-full error", interval=0.3)
        print(f"\nfilled {filled} bytes; error: {row['error']}")
        assert sorted(p.name for p in seen.iterdir()) == ["filler"]

        # the daemon keeps answering and the other watch carries on
        make_drop(layout.watch("other") / "elsewhere", images=3, seed=2)
        wait_for(
            lambda: _drop(agent, "elsewhere")["state"] == "completed",
            timeout=30,
            what="the drop of the other watch",
            interval=0.3,
        )
        assert_output_is_archive(layout.output("other") / "elsewhere")
        assert agent.healthz() == 200
        assert _drop(agent, "big")["state"] == "downloading"

        # 2. room for the archive, not for the extraction's margin: still waiting, still clean
        (seen / "filler").unlink()
        wait_for(
            lambda: _bytes_needed(_drop(agent, "big")) > EXTRACTION_MARGIN,
            timeout=30,
            what="the extraction's free-space check",
            interval=0.3,
        )
        row = _drop(agent, "big")
        print(f"after freeing the filler: {row['error']}")
        assert row["state"] == "downloading"
        assert "space" in str(row["error"])
        assert list(seen.iterdir()) == []

        # 3. a larger disk: the drop completes
        remount = f"remount,size={LARGE_TMPFS}"
        subprocess.run(
            ["nsenter", "-t", str(agent.pid), "-m", "mount", "-o", remount, str(output)],
            check=True,
            timeout=10,
        )
        wait_for(
            lambda: _drop(agent, "big")["state"] == "completed",
            timeout=40,
            what="the drop to complete once there is room",
            interval=0.3,
        )
        report = assert_output_is_archive(seen / "big")
        assert report["state"] == DropState.COMPLETED.value
        assert leftovers(seen, layout.output("other"), layout.base / "ingest") == []
        assert agent.stop() == 0
        assert integrity_check(layout.state_file) == "ok"
    finally:
        agent.kill()


EXTRACT_SCRIPT = """
import os, sys
from pathlib import Path
from odx_agent.nodeodx.exceptions import InsufficientSpaceError
from odx_agent.nodeodx.extract import safe_extract
target = Path(sys.argv[2])
try:
    safe_extract(Path(sys.argv[1]), target / "result")
except InsufficientSpaceError as error:
    print(error.resource, error.needed, error.available)
    print(error)
print(sorted(os.listdir(target)))
"""


def test_too_few_free_inodes_refuse_an_extraction_before_it_writes(tmp_path: Path) -> None:
    """A tmpfs with 64 inodes and plenty of bytes: a 200-file archive is refused up front,
    naming inodes, and nothing is written."""
    output = tmp_path / "output"
    output.mkdir()
    reason = _private_tmpfs_possible(output)
    if reason is not None:
        pytest.skip(reason)
    archive = tmp_path / "many.zip"
    with zipfile.ZipFile(archive, "w") as writer:
        for index in range(200):
            writer.writestr(f"tiles/{index:03d}.png", b"png")
    mount = 'mount -t tmpfs -o size=400m,nr_inodes=64,mode=0755 odx-test-inodes "$0" && exec "$@"'
    done = subprocess.run(
        [
            *("unshare", "-m", "--propagation", "private", "sh", "-c", mount, str(output)),
            *(sys.executable, "-c", EXTRACT_SCRIPT, str(archive), str(output)),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    figures, message, listing = done.stdout.splitlines()
    resource, needed, available = figures.split()
    assert (resource, int(needed)) == ("inodes", 201)  # 200 files and their folder
    assert 0 < int(available) < 64
    assert message == (
        f"not enough free inodes under {str(output)!r}: "
        f"201 files and folders to create, {available} inodes available"
    )
    assert listing == "[]"
