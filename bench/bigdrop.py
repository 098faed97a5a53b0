"""One large drop through the real daemon and a simulated node, with the daemon's memory.

scale: 2,000 small images in one drop against 200, so a memory cost per image shows as a
difference between the two peaks. agent-rss: 100 images of 8 MB, to show the daemon
streams files instead of holding them.

The drop is written whole (images, then the marker) in a folder beside the watch before
the daemon starts, then renamed into the watch folder once the daemon serves, so the time
runs from the drop appearing to its results being downloaded. The daemon's VmHWM (the
kernel's peak resident set of the process) is read from /proc throughout.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from bench.nodeproc import simulated_node
from bench.procstat import MemoryWatch, cpu_seconds, memory_kb
from bench.report import Section
from tests.support.agentproc import AgentLayout, AgentProcess, wait_for

DROP_NAME = "big-drop"
PROCESSING_SECONDS = 1.0
POLL_INTERVAL_SECONDS = 1.0
CHUNK_BYTES = 1 << 20


@dataclass(frozen=True)
class BigDropRun:
    """What one large drop cost the daemon."""

    images: int
    image_bytes: int
    uploads_per_drop: int
    ready_peak_mb: float  # VmHWM once the daemon served, before the drop
    peak_mb: float  # VmHWM at the end: the daemon's whole life
    max_rss_mb: float  # largest VmRSS sampled
    total_seconds: float  # drop renamed into the watch -> odx-report.json written
    upload_seconds: float  # upload_started_at -> committed_at, from the state file
    cpu_seconds: float  # the daemon's CPU over the drop
    images_count: int  # what the node's task reports


def write_images(folder: Path, images: int, image_bytes: int) -> None:
    """Given a folder, write ``images`` random-byte .JPG files of ``image_bytes`` each and
    the ``.ready`` marker (the simulated node does not decode images)."""
    folder.mkdir(parents=True)
    for index in range(images):
        with open(folder / f"IMG_{index + 1:05d}.JPG", "wb") as image:
            left = image_bytes
            while left > 0:
                chunk = os.urandom(min(left, CHUNK_BYTES))
                image.write(chunk)
                left -= len(chunk)
    (folder / ".ready").write_text("")


def run_big_drop(images: int, image_bytes: int, *, uploads_per_drop: int = 4) -> BigDropRun:
    """Given an image count and size, take one drop of them through a running daemon to
    downloaded results; return what it cost. Raise RuntimeError when the drop does not
    complete or the node's task does not hold every image."""
    with tempfile.TemporaryDirectory(prefix="odx-bench-bigdrop-") as work:
        base = Path(work)
        layout = AgentLayout(base / "agent")
        staged = layout.watch().parent / "staging" / DROP_NAME
        write_images(staged, images, image_bytes)
        with simulated_node(base / "node", processing_seconds=PROCESSING_SECONDS) as url:
            layout.write_config(
                url,
                poll_interval_seconds=POLL_INTERVAL_SECONDS,
                rescan_seconds=60.0,
                settle_seconds=0.0,
                uploads_per_drop=uploads_per_drop,
            )
            agent = AgentProcess(layout)
            agent.start(timeout=60)
            try:
                ready_peak = memory_kb(agent.pid)["VmHWM"]
                report = layout.output() / DROP_NAME / "odx-report.json"
                with MemoryWatch(agent.pid) as memory:
                    cpu_before = cpu_seconds(agent.pid)
                    started = time.monotonic()
                    staged.rename(layout.watch() / DROP_NAME)
                    _wait_for_end(agent, report, timeout=120 + images * image_bytes / 5e6)
                    total = time.monotonic() - started
                    cpu = cpu_seconds(agent.pid) - cpu_before
                    # the report is renamed into place just before the state is committed
                    drops = wait_for(
                        lambda: [d for d in agent.drops() if d.final],
                        timeout=30,
                        what="the drop's final state",
                        interval=0.2,
                    )
            finally:
                agent.stop()
            drop = drops[-1]
            if len(drops) != 1 or drop.state.value != "completed" or drop.task_uuid is None:
                raise RuntimeError(f"the drop did not complete: {drop.state.value} {drop.error}")
            info = requests.get(f"{url}/task/{drop.task_uuid}/info", timeout=30).json()
        images_count = int(info["imagesCount"])
        if images_count != images or json.loads(report.read_text())["state"] != "completed":
            raise RuntimeError(f"the node's task holds {images_count} images of {images}")
    assert drop.upload_started_at is not None
    assert drop.committed_at is not None
    return BigDropRun(
        images=images,
        image_bytes=image_bytes,
        uploads_per_drop=uploads_per_drop,
        ready_peak_mb=ready_peak / 1024,
        peak_mb=memory.peak_kb / 1024,
        max_rss_mb=memory.max_rss_kb / 1024,
        total_seconds=total,
        upload_seconds=drop.committed_at - drop.upload_started_at,
        cpu_seconds=cpu,
        images_count=images_count,
    )


def _wait_for_end(agent: AgentProcess, report: Path, *, timeout: float) -> None:
    """Return once the drop's report exists; raise RuntimeError when the daemon exits or
    the time runs out."""
    deadline = time.monotonic() + timeout
    while not report.exists():
        if not agent.running:
            raise RuntimeError(f"the daemon exited:\n{agent.log_tail()}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"no result after {timeout:.0f} s:\n{agent.log_tail()}")
        time.sleep(0.05)


def _row(run: BigDropRun) -> list[str]:
    size = run.image_bytes / 1e6
    return [
        f"{run.images:,} x {size:g} MB",
        str(run.uploads_per_drop),
        f"{run.ready_peak_mb:.1f}",
        f"{run.peak_mb:.1f}",
        f"{run.upload_seconds:.1f}",
        f"{run.total_seconds:.1f}",
        f"{run.cpu_seconds:.1f}",
        f"{run.images_count:,}",
    ]


COLUMNS = [
    "drop",
    "uploads_per_drop",
    "peak RSS before drop MB",
    "peak RSS MB",
    "upload s",
    "total s",
    "daemon CPU s",
    "node imagesCount",
]
COMMON_NOTES = [
    "The daemon (`python -m odx_agent run`) and the simulated node run in processes of "
    "their own; the drop is renamed into the watch folder once the daemon serves "
    f"(settle_seconds 0, poll_interval_seconds {POLL_INTERVAL_SECONDS:g}, node processing "
    f"{PROCESSING_SECONDS:g} s, its sample all.zip of 0.87 MB downloaded and extracted).",
    "peak RSS is the daemon's VmHWM from /proc (the kernel's high-water mark over the "
    "process's whole life, start-up included); 'before drop' is read once it serves.",
    "upload s: upload_started_at to committed_at in the state file (init, every file, "
    "commit). total s: from the rename to odx-report.json written. daemon CPU s: psutil "
    "user+system over the same span. Each run is checked: drop completed, the node's task "
    "reports imagesCount equal to the images.",
]


def scale_section(small: int = 200, large: int = 2000, image_bytes: int = 20_000) -> Section:
    """Given two image counts and an image size, run one drop of each; return the section
    comparing the daemon's peak memory between them."""
    runs = [run_big_drop(count, image_bytes) for count in (small, large)]
    ratio = runs[1].peak_mb / runs[0].peak_mb
    extra_mb = runs[1].peak_mb - runs[0].peak_mb
    section = Section(
        name="scale",
        title=f"one drop of {large:,} images against {small:,}, {image_bytes / 1e3:g} kB each",
        columns=COLUMNS,
        rows=[_row(run) for run in runs],
    )
    section.goals = [
        (
            f"the {large:,}-image drop completes with imagesCount {large:,}",
            runs[1].images_count == large,
            f"imagesCount {runs[1].images_count:,}",
        ),
        (
            f"peak RSS flat: {large:,} images within 1.10x of {small:,}",
            ratio < 1.10,
            f"{runs[1].peak_mb:.1f} MB vs {runs[0].peak_mb:.1f} MB; ratio {ratio:.3f}x; "
            f"+{extra_mb:.1f} MB for {large - small:,} more images "
            f"({extra_mb * 1024 / (large - small):.1f} kB each)",
        ),
    ]
    section.notes = [
        *COMMON_NOTES,
        "uploads_per_drop 4 and max_parallel_uploads 2 (defaults). Peak growth during the "
        + "; ".join(
            f"{run.images:,}-image drop: +{run.peak_mb - run.ready_peak_mb:.1f} MB" for run in runs
        )
        + ".",
    ]
    return section


def agent_rss_section(images: int = 100, image_bytes: int = 8_000_000) -> Section:
    """Given an image count and size, run one drop with 10 uploads in flight; return the
    section with the daemon's peak memory against its goal."""
    run = run_big_drop(images, image_bytes, uploads_per_drop=10)
    section = Section(
        name="agent-rss",
        title=f"the whole daemon while uploading {images} x {image_bytes / 1e6:g} MB in one drop",
        columns=COLUMNS,
        rows=[_row(run)],
    )
    section.goals = [
        ("daemon peak RSS < 120 MB", run.peak_mb < 120, f"{run.peak_mb:.1f} MB"),
    ]
    section.notes = [
        *COMMON_NOTES,
        "uploads_per_drop 10 (ten files of the drop in flight at once), max_parallel_uploads 2.",
        f"Largest VmRSS sampled every 20 ms during the drop: {run.max_rss_mb:.1f} MB.",
    ]
    return section
