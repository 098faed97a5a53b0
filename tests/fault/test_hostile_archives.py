"""Zip bombs and very large honest archives, extracted by a separate process whose peak
memory is measured (ru_maxrss), so a member is never held whole in memory."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
import zlib
from pathlib import Path

import pytest

from odx_agent.nodeodx.exceptions import UnsafeArchiveError
from odx_agent.nodeodx.extract import ExtractResult, inspect_archive
from tests.support.zipcraft import patch_member, tree_snapshot, write_zeros

pytestmark = pytest.mark.slow

GIB = 1024**3
MIB = 1024**2
TILES = 100_000
# The 2 GiB member needs about 4 GiB of scratch space (archive plus extraction); it runs
# wherever that is free, unless ODX_LARGE_TESTS=0 turns it off.
LARGE = (
    os.environ.get("ODX_LARGE_TESTS", "1") != "0"
    and shutil.disk_usage(tempfile.gettempdir()).free > 6 * 1024**3
)

MEASURE = """
import json, resource, sys
from pathlib import Path
from odx_agent.nodeodx.extract import safe_extract
from odx_agent.nodeodx.exceptions import GenericError
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    result = safe_extract(Path(sys.argv[1]), Path(sys.argv[2]))
    outcome = ["ok", [result.files, result.directories, result.total_bytes]]
except GenericError as error:
    outcome = [type(error).__name__, str(error)]
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"growth_bytes": (after - before) * 1024, "outcome": outcome}))
"""


def extract_measured(archive: Path, destination: Path) -> tuple[int, list[object]]:
    """Extract in a fresh interpreter; return its peak memory growth and the outcome."""
    completed = subprocess.run(
        [sys.executable, "-c", MEASURE, str(archive), str(destination)],
        capture_output=True,
        text=True,
        timeout=900,
        check=True,
        cwd=Path(__file__).parents[2],
    )
    report = json.loads(completed.stdout)
    return report["growth_bytes"], report["outcome"]


@pytest.fixture(scope="module")
def bomb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """1 GiB of zeros deflated to about 1 MiB, written in chunks."""
    path = tmp_path_factory.mktemp("bomb") / "bomb.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        write_zeros(archive, "odm_orthophoto/odm_orthophoto.tif", GIB)
    return path


@pytest.fixture
def scene(tmp_path: Path) -> Path:
    sentinel = tmp_path / "sentinel"
    sentinel.mkdir()
    for index in range(3):
        (sentinel / f"file{index}.txt").write_bytes(b"precious %d" % index)
    return tmp_path


def test_bomb_is_refused_by_ratio_before_writing(scene: Path, bomb: Path) -> None:
    assert bomb.stat().st_size < 2 * MIB
    destination = scene / "out"
    before = tree_snapshot(scene, exclude=destination)

    with pytest.raises(UnsafeArchiveError) as caught:
        inspect_archive(bomb)
    growth, outcome = extract_measured(bomb, destination)

    message = (
        r"unsafe archive member 'odm_orthophoto/odm_orthophoto.tif': "
        r"compression ratio 10\d\d over the limit 1000"
    )
    assert re.fullmatch(message, str(caught.value))
    assert outcome == ["UnsafeArchiveError", str(caught.value)]
    assert growth < 16 * MIB
    assert not destination.exists()
    assert tree_snapshot(scene, exclude=destination) == before


def test_bomb_whose_header_lies_is_stopped_by_the_byte_counter(scene: Path, bomb: Path) -> None:
    lying = scene / "lying.zip"
    shutil.copyfile(bomb, lying)
    patch_member(lying, "odm_orthophoto/odm_orthophoto.tif", file_size=MIB)
    destination = scene / "out"
    before = tree_snapshot(scene, exclude=destination)

    # The lie passes inspection: 1 MiB declared from about 1 MiB compressed.
    assert inspect_archive(lying) == ExtractResult(files=1, directories=1, total_bytes=MIB)
    growth, outcome = extract_measured(lying, destination)

    assert outcome == [
        "UnsafeArchiveError",
        "unsafe archive member 'odm_orthophoto/odm_orthophoto.tif': "
        f"produces more than its declared {MIB} bytes",
    ]
    assert growth < 16 * MIB
    assert not destination.exists()
    assert tree_snapshot(scene, exclude=destination) == before


def _tile_name(index: int) -> str:
    return f"orthophoto_tiles/21/{index // 250}/{index}.png"


def _tile_data(index: int) -> bytes:
    return b"tile %d " % index * 20


@pytest.mark.timeout(900)
def test_large_honest_archive_extracts_within_bounded_memory(tmp_path: Path) -> None:
    archive_path = tmp_path / "all.zip"
    with zipfile.ZipFile(archive_path, "w", zipfile.ZIP_DEFLATED) as archive:
        for index in range(TILES):
            archive.writestr(_tile_name(index), _tile_data(index))
        if LARGE:
            archive.compression = zipfile.ZIP_STORED
            write_zeros(archive, "odm_orthophoto/odm_orthophoto.tif", 2 * GIB, force_zip64=True)
    destination = tmp_path / "out"
    tile_bytes = sum(len(_tile_data(index)) for index in range(TILES))
    large_bytes = 2 * GIB if LARGE else 0

    try:
        growth, outcome = extract_measured(archive_path, destination)

        assert outcome == [
            "ok",
            [TILES + LARGE, TILES // 250 + 2 + LARGE, tile_bytes + large_bytes],
        ]
        # The central directory of 100,000 members (zipfile's and ours) is the only thing
        # that grows with the archive; no member is held in memory.
        assert growth < 200 * MIB
        for index in range(TILES):
            assert (destination / _tile_name(index)).read_bytes() == _tile_data(index)
        if LARGE:
            crc = 0
            with (destination / "odm_orthophoto" / "odm_orthophoto.tif").open("rb") as handle:
                while chunk := handle.read(8 * MIB):
                    crc = zlib.crc32(chunk, crc)
            with zipfile.ZipFile(archive_path) as archive:
                assert crc == archive.getinfo("odm_orthophoto/odm_orthophoto.tif").CRC
    finally:
        # Leave no 100,000-file trees behind in the kept temporary folders.
        shutil.rmtree(destination, ignore_errors=True)
        archive_path.unlink()
