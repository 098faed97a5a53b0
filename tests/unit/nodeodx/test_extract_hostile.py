"""Hostile archives are refused with a message naming the member and the rule, nothing
outside the destination changes, and the destination is left absent or empty."""

from __future__ import annotations

import stat
import struct
import unicodedata
import warnings
import zipfile
from pathlib import Path

import pytest

from odx_agent.nodeodx.exceptions import DownloadError, UnsafeArchiveError
from odx_agent.nodeodx.extract import inspect_archive, safe_extract
from tests.support.zipcraft import patch_member, rename_member, tree_snapshot


def _info(name: str, mode: int | None = None) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.compress_type = zipfile.ZIP_DEFLATED
    if mode is not None:
        info.external_attr = mode << 16
    return info


def _build(path: Path, members: list[tuple[zipfile.ZipInfo | str, bytes]]) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # zipfile warns on duplicate names
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, data in members:
                archive.writestr(name, data)
    return path


@pytest.fixture
def scene(tmp_path: Path) -> Path:
    """A tree beside the destination that hostile names aim at."""
    (tmp_path / "x").write_bytes(b"precious x")
    sentinel = tmp_path / "sentinel"
    (sentinel / "deep").mkdir(parents=True)
    (sentinel / "target.txt").write_bytes(b"precious target")
    (sentinel / "deep" / "x").write_bytes(b"precious deep")
    return tmp_path


OK = ("ok/first.txt", b"written before the bad member")

CASES: dict[str, tuple[list[tuple[zipfile.ZipInfo | str, bytes]], str]] = {
    "parent": ([OK, ("../x", b"evil")], "'../x': '..' component in name"),
    "nested-parent": ([OK, ("a/../../x", b"evil")], "'a/../../x': '..' component in name"),
    "absolute": ([OK, ("/etc/x", b"evil")], "'/etc/x': absolute path"),
    "drive-backslash": ([OK, ("C:\\x", b"evil")], "'C:\\\\x': drive letter in name"),
    "drive-slash": ([OK, ("C:/x", b"evil")], "'C:/x': drive letter in name"),
    "backslash": ([OK, ("..\\x", b"evil")], "'..\\\\x': backslash in name"),
    "dot-only": ([OK, ("./", b"")], "'./': empty name"),
    "symlink": (
        [OK, (_info("link", stat.S_IFLNK | 0o777), b"../sentinel/target.txt")],
        "'link': symbolic link member",
    ),
    "fifo": ([OK, (_info("pipe", stat.S_IFIFO | 0o644), b"")], "'pipe': special file (mode "),
    "duplicate": ([OK, ("a.txt", b"1"), ("a.txt", b"2")], "'a.txt': duplicate name"),
    "duplicate-normalised": (
        [OK, ("a/b.txt", b"1"), ("./a//b.txt", b"2")],
        "'./a//b.txt': duplicate name",
    ),
    "duplicate-unicode": (
        [
            OK,
            (unicodedata.normalize("NFC", "é.txt"), b"1"),
            (unicodedata.normalize("NFD", "é.txt"), b"2"),
        ],
        "duplicate name",
    ),
    "duplicate-directory": ([OK, ("d/", b""), ("d/", b"")], "'d/': duplicate name"),
    "file-then-directory": (
        [OK, ("a", b"file"), ("a/b.txt", b"below")],
        "'a/b.txt': a parent directory collides with a file",
    ),
    "directory-then-file": (
        [OK, ("a/b.txt", b"below"), ("a", b"file")],
        "'a': file collides with a directory",
    ),
    "named-directory-then-file": ([OK, ("a/", b""), ("a", b"f")], "'a': file collides"),
    "file-then-named-directory": (
        [OK, ("a", b"f"), ("a/", b"")],
        "'a/': directory collides with a file",
    ),
    "directory-with-data": ([OK, ("d/", b"data")], "'d/': directory entry carries data"),
}


@pytest.mark.parametrize("existing_destination", [False, True], ids=["absent", "empty"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_archive_is_refused_and_nothing_changes(
    scene: Path, case: str, existing_destination: bool
) -> None:
    members, message = CASES[case]
    archive = _build(scene / "hostile.zip", members)
    destination = scene / "out"
    if existing_destination:
        destination.mkdir()
    before = tree_snapshot(scene, exclude=destination)

    with pytest.raises(UnsafeArchiveError) as caught:
        inspect_archive(archive)
    assert str(caught.value).startswith("unsafe archive member ")
    assert message in str(caught.value)
    with pytest.raises(UnsafeArchiveError, match=r"^unsafe archive member "):
        safe_extract(archive, destination)

    assert tree_snapshot(scene, exclude=destination) == before
    assert not Path("/etc/x").exists()
    if existing_destination:
        assert list(destination.iterdir()) == []
    else:
        assert not destination.exists()


def test_nul_in_name_is_refused(scene: Path) -> None:
    archive = _build(scene / "hostile.zip", [OK, ("aXb", b"evil")])
    rename_member(archive, "aXb", b"a\x00b")
    before = tree_snapshot(scene, exclude=scene / "out")

    with pytest.raises(UnsafeArchiveError, match=r"^unsafe archive member 'a\\x00b': NUL"):
        safe_extract(archive, scene / "out")

    assert tree_snapshot(scene, exclude=scene / "out") == before
    assert not (scene / "out").exists()


def test_empty_name_is_refused(scene: Path) -> None:
    # zipfile will not write an empty name: turn the one-byte name "E" of the last central
    # record into a one-byte extra field, leaving the name empty.
    archive = _build(scene / "hostile.zip", [OK, ("E", b"evil")])
    with zipfile.ZipFile(archive) as opened:
        start = opened.start_dir
    data = bytearray(archive.read_bytes())
    record = data.rindex(b"PK\x01\x02", start)
    assert struct.unpack("<HH", data[record + 28 : record + 32]) == (1, 0)
    data[record + 28 : record + 32] = struct.pack("<HH", 0, 1)
    archive.write_bytes(bytes(data))

    with pytest.raises(UnsafeArchiveError, match=r"^unsafe archive member '': empty name$"):
        inspect_archive(archive)


@pytest.mark.parametrize("existing_destination", [False, True], ids=["absent", "empty"])
def test_member_longer_than_declared_is_stopped_and_removed(
    scene: Path, existing_destination: bool
) -> None:
    archive = _build(
        scene / "lying.zip",
        [OK, ("ok/second.txt", b"2"), ("big.bin", bytes(4 * 1024 * 1024)), ("after.txt", b"3")],
    )
    patch_member(archive, "big.bin", file_size=1000)
    destination = scene / "out"
    if existing_destination:
        destination.mkdir()
    before = tree_snapshot(scene, exclude=destination)

    assert inspect_archive(archive).total_bytes == len(OK[1]) + 1 + 1000 + 1
    with pytest.raises(
        UnsafeArchiveError,
        match=r"^unsafe archive member 'big.bin': produces more than its declared 1000 bytes$",
    ):
        safe_extract(archive, destination)

    assert tree_snapshot(scene, exclude=destination) == before
    if existing_destination:
        assert list(destination.iterdir()) == []
    else:
        assert not destination.exists()


def test_member_shorter_than_declared_is_a_download_error(scene: Path) -> None:
    archive = _build(scene / "short.zip", [OK, ("data.bin", b"0123456789")])
    patch_member(archive, "data.bin", file_size=11)

    with pytest.raises(
        DownloadError,
        match=r"^archive member 'data.bin' is corrupt: 10 bytes instead of the declared 11$",
    ):
        safe_extract(archive, scene / "out")
    assert not (scene / "out").exists()


def test_link_already_in_destination_is_never_written_through(scene: Path) -> None:
    archive = _build(scene / "a.zip", [("sentinel/target.txt", b"evil")])
    destination = scene / "out"
    destination.mkdir()
    (destination / "sentinel").symlink_to(scene / "sentinel")
    before = tree_snapshot(scene, exclude=destination)

    with pytest.raises(FileExistsError, match="is not empty"):
        safe_extract(archive, destination)

    assert tree_snapshot(scene, exclude=destination) == before
    assert (destination / "sentinel").is_symlink()


def test_destination_that_is_a_link_is_refused(scene: Path) -> None:
    archive = _build(scene / "a.zip", [("target.txt", b"evil")])
    destination = scene / "out"
    empty = scene / "empty"
    empty.mkdir()
    destination.symlink_to(empty)

    with pytest.raises(FileExistsError, match="is not a directory"):
        safe_extract(archive, destination)

    assert list(empty.iterdir()) == []
