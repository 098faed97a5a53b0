"""The tree writer never follows a link, whether it was there before or planted between two
members, and takes back exactly what it created."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from odx_agent.nodeodx.exceptions import UnsafeArchiveError
from odx_agent.nodeodx.tree_writer import TreeWriter
from tests.support.zipcraft import tree_snapshot


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    sentinel = tmp_path / "sentinel"
    (sentinel / "odm_dem").mkdir(parents=True)
    (sentinel / "images.json").write_bytes(b"precious")
    return sentinel


@pytest.fixture
def root(tmp_path: Path) -> Path:
    destination = tmp_path / "out"
    destination.mkdir()
    return destination


def _write(writer: TreeWriter, parts: tuple[str, ...], data: bytes) -> None:
    file_fd = writer.create_file(parts)
    try:
        os.write(file_fd, data)
    finally:
        os.close(file_fd)


def _open(path: Path) -> int:
    return os.open(path, os.O_RDONLY | os.O_DIRECTORY)


def test_existing_link_to_a_directory_is_not_followed(root: Path, outside: Path) -> None:
    (root / "odm_dem").symlink_to(outside / "odm_dem")
    before = tree_snapshot(outside)
    root_fd = _open(root)
    writer = TreeWriter(root_fd)

    with pytest.raises(UnsafeArchiveError, match="'odm_dem': something this extraction did not"):
        _write(writer, ("odm_dem", "dsm.tif"), b"evil")

    writer.remove_created()
    os.close(root_fd)
    assert tree_snapshot(outside) == before
    assert (root / "odm_dem").is_symlink()


def test_existing_link_to_a_file_is_not_opened(root: Path, outside: Path) -> None:
    (root / "images.json").symlink_to(outside / "images.json")
    root_fd = _open(root)
    writer = TreeWriter(root_fd)

    with pytest.raises(UnsafeArchiveError, match=r"^unsafe archive member path 'images.json'"):
        _write(writer, ("images.json",), b"evil")

    os.close(root_fd)
    assert (outside / "images.json").read_bytes() == b"precious"


def test_directory_swapped_for_a_link_between_members_is_not_entered(
    root: Path, outside: Path
) -> None:
    root_fd = _open(root)
    writer = TreeWriter(root_fd)
    _write(writer, ("a", "1.png"), b"one")
    _write(writer, ("b", "2.png"), b"two")  # the writer now holds b, no longer a
    (root / "a").rename(root / "a-moved")
    (root / "a").symlink_to(outside / "odm_dem")
    before = tree_snapshot(outside)

    with pytest.raises(UnsafeArchiveError, match=r"^unsafe archive member path 'a'"):
        _write(writer, ("a", "3.png"), b"evil")

    writer.remove_created()
    os.close(root_fd)
    assert tree_snapshot(outside) == before
    # What the writer made and could still reach is gone; the planted link and the moved
    # directory are left for whoever planted them.
    assert sorted(path.name for path in root.iterdir()) == ["a", "a-moved"]
    assert (root / "a").is_symlink()
    assert (root / "a-moved" / "1.png").read_bytes() == b"one"


def test_remove_created_takes_back_everything_it_made(root: Path) -> None:
    (root / "foreign.txt").write_bytes(b"keep")
    root_fd = _open(root)
    writer = TreeWriter(root_fd)
    writer.make_directory(("empty", "deeper"))
    for index in range(5):
        _write(writer, ("tiles", str(index % 2), f"{index}.png"), b"x")
    _write(writer, ("top.txt",), b"y")

    writer.remove_created()
    os.close(root_fd)

    assert [path.name for path in root.iterdir()] == ["foreign.txt"]


def test_only_the_directory_chain_is_held_open(root: Path) -> None:
    root_fd = _open(root)
    writer = TreeWriter(root_fd)
    descriptors_before = len(os.listdir("/proc/self/fd"))

    for index in range(300):
        _write(writer, ("tiles", "18", str(index), "1.png"), b"x")

    assert len(os.listdir("/proc/self/fd")) - descriptors_before == 3
    writer.close()
    os.close(root_fd)
    assert len(os.listdir("/proc/self/fd")) == descriptors_before - 1
