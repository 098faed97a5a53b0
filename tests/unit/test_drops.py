"""Drop folder scanning and the readiness decision, on real folders with pure inputs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from odx_agent.drops import DropSnapshot, Verdict, classify, decide, scan_drop, why_unusable


@pytest.mark.parametrize(
    ("relative", "kind"),
    [
        ("IMG_1.JPG", "image"),
        ("a/b/IMG_1.jpeg", "image"),
        ("x.TIFF", "image"),
        ("raw.dng", "image"),
        ("gcp_list.txt", "sidecar"),
        ("sub/geo.txt", "sidecar"),
        ("align.tif", "sidecar"),  # a sidecar name wins over an image extension
        ("align.LAZ", "sidecar"),
        (".ready", "marker"),
        ("odx.yaml", "ticket"),
        ("sub/odx.yaml", "other"),
        ("IMG.JPG.part", "partial"),
        ("IMG.JPG.tmp", "partial"),
        ("IMG.JPG~", "partial"),
        (".IMG_1.JPG.a1B2c3", "partial"),  # rsync's temporary name
        ("IMG.JPG.crdownload", "partial"),
        (".thumbs.jpg", "hidden"),
        ("notes.pdf", "other"),
    ],
)
def test_classify(relative: str, kind: str) -> None:
    assert classify(relative, ".ready") == kind


def test_scan_lists_links_and_special_files_as_ignored(tmp_path: Path) -> None:
    (tmp_path / "A.JPG").write_bytes(b"a" * 10)
    (tmp_path / "B.JPG").write_bytes(b"b" * 20)
    os.symlink(tmp_path / "A.JPG", tmp_path / "C.JPG")
    os.symlink("/", tmp_path / "root")
    os.mkfifo(tmp_path / "pipe.JPG")
    (tmp_path / ".ready").write_text("")

    snapshot = scan_drop(tmp_path, ".ready")

    assert [entry.relative for entry in snapshot.images] == ["A.JPG", "B.JPG"]
    assert snapshot.total_bytes == 30
    assert snapshot.marker is not None
    assert snapshot.ignored == (
        "C.JPG (symbolic link)",
        "pipe.JPG (not a regular file)",
        "root (symbolic link)",
    )


def test_fingerprint_follows_names_sizes_and_mtimes_not_ignored_files(tmp_path: Path) -> None:
    (tmp_path / "A.JPG").write_bytes(b"a" * 10)
    first = scan_drop(tmp_path, ".ready").fingerprint()
    (tmp_path / "notes.pdf").write_bytes(b"x")
    assert scan_drop(tmp_path, ".ready").fingerprint() == first
    (tmp_path / "A.JPG").write_bytes(b"a" * 11)
    assert scan_drop(tmp_path, ".ready").fingerprint() != first


def test_clashing_names_in_subfolders_are_found(tmp_path: Path) -> None:
    for folder in ("left", "right"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "IMG_1.JPG").write_bytes(b"x")
    snapshot = scan_drop(tmp_path, None)
    assert snapshot.clashes == {"img_1.jpg": ("left/IMG_1.JPG", "right/IMG_1.JPG")}


def _snapshot(
    tmp_path: Path, images: int = 2, marker: bool = True, mtime: float = 1000.0
) -> DropSnapshot:
    for index in range(images):
        path = tmp_path / f"I{index}.JPG"
        path.write_bytes(b"x")
        os.utime(path, (mtime, mtime))
    if marker:
        (tmp_path / ".ready").write_text("")
        os.utime(tmp_path / ".ready", (mtime, mtime))
    os.utime(tmp_path, (mtime, mtime))
    return scan_drop(tmp_path, ".ready" if marker else None)


def test_decide_waits_for_the_marker(tmp_path: Path) -> None:
    snapshot = _snapshot(tmp_path, marker=False)
    decision = decide(
        snapshot, marker=".ready", settle_seconds=5, min_images=2, now=5000, last_change=1000
    )
    assert decision.verdict == Verdict.WAIT
    assert decision.reason == "waiting for the marker .ready"


def test_decide_waits_until_quiet_then_goes(tmp_path: Path) -> None:
    snapshot = _snapshot(tmp_path)
    early = decide(
        snapshot, marker=".ready", settle_seconds=5, min_images=2, now=1003, last_change=1001
    )
    assert (early.verdict, early.recheck_at) == (Verdict.WAIT, 1006)
    ready = decide(
        snapshot, marker=".ready", settle_seconds=5, min_images=2, now=1006, last_change=1001
    )
    assert ready.verdict == Verdict.GO


def test_too_few_images_fail_with_a_marker_but_wait_without(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    with_marker = _snapshot(tmp_path / "m", 1)
    failed = decide(
        with_marker, marker=".ready", settle_seconds=0, min_images=2, now=2000, last_change=0
    )
    assert (failed.verdict, failed.reason) == (Verdict.FAIL, "1 images found, at least 2 needed")
    (tmp_path / "q").mkdir()
    quiet = _snapshot(tmp_path / "q", 1, marker=False)
    waiting = decide(quiet, marker=None, settle_seconds=300, min_images=2, now=5000, last_change=0)
    assert (waiting.verdict, waiting.reason) == (Verdict.WAIT, "1 images found, at least 2 needed")


def test_a_folder_that_cannot_be_listed_is_reported(tmp_path: Path) -> None:
    (tmp_path / "A.JPG").write_bytes(b"a")
    (tmp_path / "B.JPG").write_bytes(b"b")
    (tmp_path / "locked").mkdir()

    def listdir(path: Path) -> list[str]:
        if path.name == "locked":
            raise PermissionError(13, "Permission denied", str(path))
        return os.listdir(path)

    snapshot = scan_drop(tmp_path, None, listdir=listdir)
    assert snapshot.unreadable == ("locked/ (folder)",)
    assert why_unusable(snapshot, 2) == "cannot read: locked/ (folder)"
