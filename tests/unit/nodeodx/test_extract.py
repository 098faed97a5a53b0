"""Extraction of honest archives, the inspection rules, and the free-space decision."""

from __future__ import annotations

import os
import stat
import struct
import zipfile
from collections import namedtuple
from collections.abc import Iterator
from pathlib import Path

import pytest

from odx_agent.nodeodx.diskspace import nearest_existing_directory
from odx_agent.nodeodx.exceptions import (
    DownloadError,
    InsufficientSpaceError,
    UnsafeArchiveError,
)
from odx_agent.nodeodx.extract import (
    BLOCK_BYTES,
    ExtractLimits,
    ExtractResult,
    check_free_space,
    inspect_archive,
    required_space,
    safe_extract,
)

SAMPLE = Path(__file__).parents[3] / "odx_agent" / "simnode" / "data" / "sample-all.zip"
Figures = namedtuple("Figures", "f_bavail f_frsize f_files f_favail", defaults=(0, 0))


@pytest.fixture
def umask_022() -> Iterator[None]:
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def build(path: Path, members: list[tuple[str | zipfile.ZipInfo, bytes]]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members:
            archive.writestr(name, data)
    return path


def test_sample_archive_extracts_with_exact_content_and_group_readable_modes(
    tmp_path: Path, umask_022: None
) -> None:
    destination = tmp_path / "out"

    result = safe_extract(SAMPLE, destination)

    with zipfile.ZipFile(SAMPLE) as archive:
        infos = archive.infolist()
        assert len(infos) == 88
        expected_files = {i.filename: archive.read(i) for i in infos if not i.is_dir()}
    written = {
        str(path.relative_to(destination)): path.read_bytes()
        for path in destination.rglob("*")
        if path.is_file()
    }
    assert written == expected_files
    directories = [path for path in destination.rglob("*") if path.is_dir()]
    assert result == ExtractResult(files=59, directories=len(directories), total_bytes=1155383)
    assert result.directories == 39
    assert sum(len(data) for data in written.values()) == result.total_bytes
    assert {stat.S_IMODE(p.stat().st_mode) for p in destination.rglob("*") if p.is_file()} == {
        0o640
    }
    assert {stat.S_IMODE(p.stat().st_mode) for p in directories} == {0o750}
    assert stat.S_IMODE(destination.stat().st_mode) == 0o750


def test_inspect_reports_files_implied_directories_and_bytes(tmp_path: Path) -> None:
    archive = build(
        tmp_path / "a.zip",
        [("tiles/1/2/3.png", b"abc"), ("tiles/", b""), ("readme.txt", b"hello"), ("empty/", b"")],
    )

    assert inspect_archive(archive) == ExtractResult(files=2, directories=4, total_bytes=8)


def test_existing_empty_destination_is_used(tmp_path: Path) -> None:
    archive = build(tmp_path / "a.zip", [("x/y.txt", b"y")])
    destination = tmp_path / "out"
    destination.mkdir()

    safe_extract(archive, destination)

    assert (destination / "x" / "y.txt").read_bytes() == b"y"


def test_non_empty_destination_is_refused_untouched(tmp_path: Path) -> None:
    archive = build(tmp_path / "a.zip", [("x.txt", b"new")])
    destination = tmp_path / "out"
    destination.mkdir()
    (destination / "x.txt").write_bytes(b"old")

    with pytest.raises(FileExistsError, match="is not empty"):
        safe_extract(archive, destination)

    assert (destination / "x.txt").read_bytes() == b"old"


def test_destination_that_is_a_file_is_refused(tmp_path: Path) -> None:
    archive = build(tmp_path / "a.zip", [("x.txt", b"new")])
    destination = tmp_path / "out"
    destination.write_bytes(b"file")

    with pytest.raises(FileExistsError, match="is not a directory"):
        safe_extract(archive, destination)

    assert destination.read_bytes() == b"file"


@pytest.mark.parametrize(
    ("members", "limits", "message"),
    [
        (
            [("a.txt", b"1"), ("b.txt", b"2"), ("c.txt", b"3")],
            ExtractLimits(max_members=2),
            "unsafe archive: 3 members, more than the limit 2",
        ),
        (
            [("a.txt", b"1" * 60), ("b.txt", b"2" * 60)],
            ExtractLimits(max_total_bytes=100),
            "unsafe archive member 'b.txt': archive total exceeds the limit of 100 bytes",
        ),
        (
            [("zeros.bin", bytes(100_000))],
            ExtractLimits(ratio_min_bytes=1000, max_compression_ratio=50),
            r"unsafe archive member 'zeros.bin': compression ratio \d+ over the limit 50",
        ),
        (
            [(f"z{index}.bin", bytes(900)) for index in range(20)],
            ExtractLimits(ratio_min_bytes=1000, max_compression_ratio=10),
            r"unsafe archive: overall compression ratio \d+ over the limit 10",
        ),
    ],
)
def test_limits_are_enforced_before_writing(
    tmp_path: Path, members: list[tuple[str, bytes]], limits: ExtractLimits, message: str
) -> None:
    archive = build(tmp_path / "a.zip", list(members))

    with pytest.raises(UnsafeArchiveError, match=f"^{message}$"):
        inspect_archive(archive, limits)
    with pytest.raises(UnsafeArchiveError, match=f"^{message}$"):
        safe_extract(archive, tmp_path / "out", limits=limits)
    assert not (tmp_path / "out").exists()


def test_small_highly_compressible_member_is_not_judged_by_ratio(tmp_path: Path) -> None:
    archive = build(tmp_path / "a.zip", [("zeros.bin", bytes(1_000_000))])

    assert inspect_archive(archive).total_bytes == 1_000_000


def test_not_a_zip_is_a_download_error(tmp_path: Path) -> None:
    archive = tmp_path / "a.zip"
    archive.write_bytes(b"<html>proxy error</html>")

    with pytest.raises(DownloadError, match=r"^archive 'a.zip' is not a readable zip: "):
        safe_extract(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def _patch_crc(archive: Path, crc: int) -> None:
    # Single-member archive: the local header is at 0, the central record at start_dir.
    with zipfile.ZipFile(archive) as opened:
        central = opened.start_dir
    with archive.open("r+b") as handle:
        handle.seek(14)
        handle.write(struct.pack("<I", crc))
        handle.seek(central + 16)
        handle.write(struct.pack("<I", crc))


def test_crc_mismatch_is_a_download_error_and_leaves_nothing(tmp_path: Path) -> None:
    archive = build(tmp_path / "a.zip", [("dir/data.bin", b"payload" * 1000)])
    _patch_crc(archive, 0x12345678)

    with pytest.raises(DownloadError, match=r"^archive member 'dir/data.bin' is corrupt: Bad CRC"):
        safe_extract(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_check_free_space_raises_with_needed_and_available(tmp_path: Path) -> None:
    def statvfs(path: Path) -> Figures:
        assert path == tmp_path
        return Figures(f_bavail=10, f_frsize=4096)

    check_free_space(tmp_path, 40960, statvfs=statvfs)
    with pytest.raises(InsufficientSpaceError) as caught:
        check_free_space(tmp_path, 40961, statvfs=statvfs)

    assert caught.value.needed == 40961
    assert caught.value.available == 40960
    assert str(caught.value) == (
        f"not enough free space under {str(tmp_path)!r}: 40961 bytes needed, 40960 available"
    )


def test_check_free_space_counts_inodes_where_the_filesystem_has_a_limit(
    tmp_path: Path,
) -> None:
    limited = Figures(f_bavail=10, f_frsize=4096, f_files=1000, f_favail=5)
    unlimited = Figures(f_bavail=10, f_frsize=4096, f_files=0, f_favail=0)  # btrfs, NFS

    check_free_space(tmp_path, 1, entries=5, statvfs=lambda _path: limited)
    check_free_space(tmp_path, 1, entries=10**6, statvfs=lambda _path: unlimited)
    with pytest.raises(InsufficientSpaceError) as caught:
        check_free_space(tmp_path, 1, entries=6, statvfs=lambda _path: limited)

    assert (caught.value.resource, caught.value.needed, caught.value.available) == (
        "inodes",
        6,
        5,
    )
    assert str(caught.value) == (
        f"not enough free inodes under {str(tmp_path)!r}: "
        "6 files and folders to create, 5 inodes available"
    )


def test_check_free_space_reads_the_real_filesystem(tmp_path: Path) -> None:
    figures = os.statvfs(tmp_path)
    available = figures.f_bavail * figures.f_frsize

    check_free_space(tmp_path, 1)
    with pytest.raises(InsufficientSpaceError):
        check_free_space(tmp_path, available + 1024**4)


def test_required_space_adds_block_slack_and_margin(tmp_path: Path) -> None:
    result = ExtractResult(files=3, directories=2, total_bytes=1000)

    assert required_space(tmp_path / "a.zip", result, ExtractLimits(free_space_margin_bytes=7)) == (
        1000 + 5 * BLOCK_BYTES + 7
    )
    assert required_space(tmp_path / "a.zip", result) == 1000 + 5 * BLOCK_BYTES + 256 * 1024**2


def test_safe_extract_refuses_when_margin_exceeds_free_space(tmp_path: Path) -> None:
    archive = build(tmp_path / "a.zip", [("a.txt", b"1")])
    figures = os.statvfs(tmp_path)
    too_much = figures.f_bavail * figures.f_frsize + 1024**4

    with pytest.raises(InsufficientSpaceError) as caught:
        safe_extract(
            archive, tmp_path / "out", limits=ExtractLimits(free_space_margin_bytes=too_much)
        )

    assert caught.value.needed == 1 + BLOCK_BYTES + too_much
    assert not (tmp_path / "out").exists()


def test_nearest_existing_directory_walks_up(tmp_path: Path) -> None:
    assert nearest_existing_directory(tmp_path / "a" / "b") == tmp_path
    assert nearest_existing_directory(tmp_path) == tmp_path
