"""The upload benchmark: create one task of N images with M MB each, P uploads at a time.

Three clients do the same work against a fresh simulated node each, every client in a
process of its own: odx-agent's client, the seed library pyodx, and plain curl (one init,
the uploads through ``xargs -P``, one commit). Each task must end with imagesCount N.
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import requests

from bench.measure import Measurement, run_measured
from bench.nodeproc import simulated_node
from bench.report import Section

REPO_ROOT = Path(__file__).resolve().parent.parent
CLIENTS = ("curl", "pyodx", "odx-agent")
IMAGES_ROOT = Path(tempfile.gettempdir()) / "odx-bench-images"
RUN_SECONDS = 1800.0
RSS_LIMIT_MB = 45.0
CURL_RATIO_LIMIT = 1.1

CURL_SCRIPT = """
set -eu
curl -sS -X POST -H "set-uuid: $TASK" -F name=bench "$URL/task/new/init" > "$OUT/init.json"
xargs -P "$PARALLEL" -I{} curl -sS -F images=@{} "$URL/task/new/upload/$TASK" \
    < "$LIST" > "$OUT/uploads.json"
curl -sS -X POST "$URL/task/new/commit/$TASK" > "$OUT/commit.json"
"""


@dataclass(frozen=True)
class UploadResult:
    """The median cost of one client uploading one image set, over the repeats."""

    client: str
    images: int
    size_mb: float
    wall_seconds: float
    cpu_seconds: float
    peak_rss_mb: float
    total_rss_mb: float
    walls: tuple[float, ...]


def image_set(images: int, size_mb: float) -> list[Path]:
    """Given a count and a size, return paths of that many random-byte JPG files.

    The files are written once under the temporary folder and reused by later runs.
    """
    folder = IMAGES_ROOT / f"{images}x{size_mb:g}MB"
    size = int(size_mb * 1024 * 1024)
    paths = [folder / f"IMG_{index:04d}.JPG" for index in range(1, images + 1)]
    if all(path.exists() and path.stat().st_size == size for path in paths):
        return paths
    folder.mkdir(parents=True, exist_ok=True)
    for path in paths:
        path.write_bytes(os.urandom(size))
    return paths


def warm_page_cache(paths: list[Path]) -> None:
    """Given files, read each once, so no client pays for the first read from disk."""
    for path in paths:
        with path.open("rb") as stream:
            while stream.read(1 << 20):
                pass


def measure_upload(client: str, paths: list[Path], parallel: int, work_dir: Path) -> Measurement:
    """Given a client name, images, the parallel upload count and a scratch folder, start
    a fresh simulated node, upload through that client and return what the client cost.

    Raise RuntimeError when the client fails or the task does not hold every image.
    """
    node_dir = work_dir / f"node-{client}"
    node_dir.mkdir()
    list_file = work_dir / "images.txt"
    list_file.write_text("".join(f"{path}\n" for path in paths))
    try:
        with simulated_node(node_dir, processing_seconds=3.0) as url:
            if client == "curl":
                task_uuid = str(uuid.uuid4())
                out = work_dir / "curl-out"
                out.mkdir(exist_ok=True)
                env = {
                    **os.environ,
                    "URL": url,
                    "TASK": task_uuid,
                    "LIST": str(list_file),
                    "PARALLEL": str(parallel),
                    "OUT": str(out),
                }
                measured = run_measured(["sh", "-c", CURL_SCRIPT], timeout=RUN_SECONDS, env=env)
                _check_curl_answers(out, len(paths))
            else:
                command = [sys.executable, "-m", "bench.clients", client, url, str(list_file)]
                measured = run_measured(
                    [*command, str(parallel)], timeout=RUN_SECONDS, cwd=REPO_ROOT
                )
                task_uuid = measured.stdout.strip().splitlines()[-1] if measured.stdout else ""
            if measured.returncode != 0:
                raise RuntimeError(f"{client} failed: {measured.stderr[-2000:]}")
            _check_images_count(url, task_uuid, len(paths))
    finally:
        shutil.rmtree(node_dir, ignore_errors=True)
    return measured


def _check_curl_answers(out: Path, images: int) -> None:
    uploads = (out / "uploads.json").read_text()
    if uploads.count('"success":true') != images:
        raise RuntimeError(f"curl uploads answered: {uploads[:500]}")
    for step in ("init", "commit"):
        answer = (out / f"{step}.json").read_text()
        if '"uuid"' not in answer:
            raise RuntimeError(f"curl {step} answered: {answer[:500]}")


def _check_images_count(url: str, task_uuid: str, images: int) -> None:
    info = requests.get(f"{url}/task/{task_uuid}/info", timeout=30).json()
    if info.get("imagesCount") != images:
        raise RuntimeError(f"task {task_uuid} has imagesCount {info.get('imagesCount')}")


def run_upload(
    images: int, sizes_mb: list[float], parallel: int, repeat: int
) -> list[UploadResult]:
    """Given the image count, the image sizes to try, the parallel upload count and how
    many times to repeat, measure every client on every size; return medians, in order.

    Clients take turns within each repeat, so slow drift of the machine hits all alike.
    """
    results: list[UploadResult] = []
    for size_mb in sizes_mb:
        paths = image_set(images, size_mb)
        warm_page_cache(paths)
        runs: dict[str, list[Measurement]] = {client: [] for client in CLIENTS}
        for _ in range(repeat):
            for client in CLIENTS:
                with tempfile.TemporaryDirectory(prefix="odx-bench-") as work:
                    runs[client].append(measure_upload(client, paths, parallel, Path(work)))
                print(
                    f"  {client} {images} x {size_mb:g} MB: {runs[client][-1].wall_seconds:.2f} s",
                    file=sys.stderr,
                )
        for client in CLIENTS:
            results.append(
                UploadResult(
                    client=client,
                    images=images,
                    size_mb=size_mb,
                    wall_seconds=statistics.median(m.wall_seconds for m in runs[client]),
                    cpu_seconds=statistics.median(m.cpu_seconds for m in runs[client]),
                    peak_rss_mb=statistics.median(m.peak_rss_mb for m in runs[client]),
                    total_rss_mb=statistics.median(m.total_rss_mb for m in runs[client]),
                    walls=tuple(m.wall_seconds for m in runs[client]),
                )
            )
    return results


def wall_ratio(result: UploadResult, reference: UploadResult) -> float:
    """Given two clients' results, return the median of their per-repeat wall time ratios.

    Clients take turns within each repeat, so a burst of load from elsewhere on the
    machine hits neighbouring runs alike; the ratio within one repeat cancels most of it.
    """
    return statistics.median(
        ours / theirs for ours, theirs in zip(result.walls, reference.walls, strict=True)
    )


def upload_section(results: list[UploadResult], parallel: int) -> Section:
    """Given the measured results, return the report section with ratios, goals and notes."""
    by_key = {(r.client, r.size_mb): r for r in results}
    sizes = sorted({r.size_mb for r in results}, reverse=True)
    images = results[0].images
    section = Section(
        name="upload",
        title=f"create one task of {images} images, {parallel} uploads in parallel",
        columns=[
            "client",
            "images",
            "wall s",
            "CPU s",
            "peak RSS MB",
            "all procs RSS MB",
            "wall vs curl",
            "wall vs pyodx",
        ],
    )
    for size in sizes:
        curl, seed = by_key[("curl", size)], by_key[("pyodx", size)]
        for client in CLIENTS:
            result = by_key[(client, size)]
            section.rows.append(
                [
                    client,
                    f"{images} x {size:g} MB",
                    f"{result.wall_seconds:.2f}",
                    f"{result.cpu_seconds:.2f}",
                    f"{result.peak_rss_mb:.1f}",
                    f"{result.total_rss_mb:.1f}",
                    f"{wall_ratio(result, curl):.2f}x",
                    f"{wall_ratio(result, seed):.2f}x",
                ]
            )
        ours = by_key[("odx-agent", size)]
        curl_ratio = wall_ratio(ours, curl)
        seed_ratio = wall_ratio(ours, seed)
        section.goals.append(
            (
                f"{size:g} MB images: wall within {CURL_RATIO_LIMIT}x of curl",
                curl_ratio <= CURL_RATIO_LIMIT,
                f"{ours.wall_seconds:.2f} s vs {curl.wall_seconds:.2f} s; ratio {curl_ratio:.2f}x",
            )
        )
        section.goals.append(
            (
                f"{size:g} MB images: no slower than pyodx",
                seed_ratio <= 1.0,
                f"{ours.wall_seconds:.2f} s vs {seed.wall_seconds:.2f} s; ratio {seed_ratio:.2f}x",
            )
        )
        section.goals.append(
            (
                f"{size:g} MB images: client peak RSS < {RSS_LIMIT_MB:g} MB",
                ours.peak_rss_mb < RSS_LIMIT_MB,
                f"{ours.peak_rss_mb:.1f} MB",
            )
        )
    if len(sizes) > 1:
        big, small = by_key[("odx-agent", sizes[0])], by_key[("odx-agent", sizes[-1])]
        allowed = (sizes[0] - sizes[-1]) / 2
        difference = big.peak_rss_mb - small.peak_rss_mb
        section.goals.append(
            (
                f"client peak RSS independent of image size (differs < {allowed:g} MB, half "
                f"the size step)",
                abs(difference) < allowed,
                f"{big.peak_rss_mb:.1f} MB at {sizes[0]:g} MB vs {small.peak_rss_mb:.1f} MB "
                f"at {sizes[-1]:g} MB",
            )
        )
    section.notes = [
        "Each client runs in its own process against a fresh simulated node in another "
        "process; wall, CPU (user+sys, from wait4) and memory are the client's alone. The "
        "figures are medians over the repeats; the ratios are medians of the ratios within "
        "each repeat (clients take turns), which cancels most load from elsewhere.",
        "On a machine with few cores the node's own cost weighs in: it parses and stores "
        "every upload on the same CPUs the client uses, so wall times are partly the "
        "node's and the ratios understate the differences between clients.",
        "curl: one init, the uploads as `curl -sS -F images=@FILE URL/task/new/upload/UUID` "
        f"through `xargs -P {parallel}`, one commit. Its CPU is every curl's together; "
        "peak RSS is the largest single curl process, all procs RSS the largest sum seen "
        "at once (sampled every 20 ms, so approximate).",
        "pyodx and odx-agent: a Python process doing `Node.from_url(url).create_task(files, "
        f"parallel_uploads={parallel})`; interpreter start-up and imports are included.",
        "Every run is checked: the node's task must report imagesCount equal to the images "
        "sent. Images are random bytes with .JPG names, read once beforehand so the page "
        "cache is warm for every client.",
    ]
    return section
