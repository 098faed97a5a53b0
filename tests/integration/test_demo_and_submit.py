"""`odx-agent demo` and `odx-agent submit`, run as the commands they are."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

from PIL import Image

from odx_agent.commands.demo import make_sample_drop
from odx_agent.simnode import SimulatedNode
from tests.support.agenttest import make_drop, node_tasks, watch, write_config

ARCHIVE = Path(__file__).parents[2] / "odx_agent" / "simnode" / "data" / "sample-all.zip"


def test_demo_runs_the_pipeline_on_embedded_defaults(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "odx_agent", "demo"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
        env={**os.environ, "TMPDIR": str(tmp_path)},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    (summary,) = [line for line in lines if line.startswith("demo completed: ")]
    assert summary.startswith("demo completed: 5 images -> task ")
    (results,) = [line for line in lines if line.startswith("results: ")]
    output = Path(results.split()[1])
    report = json.loads((output / "odx-report.json").read_text())
    assert (report["state"], report["images"], report["watch"]) == ("completed", 5, "demo")
    assert lines[-1].startswith("everything the demo made is in ")
    with zipfile.ZipFile(ARCHIVE) as archive:
        expected = sorted(i.filename for i in archive.infolist() if not i.is_dir())
    found = sorted(
        str(p.relative_to(output))
        for p in output.rglob("*")
        if p.is_file() and p.name != "odx-report.json"
    )
    assert found == expected
    demo_folder = output.parents[1]  # <demo folder>/results/flight-001
    assert demo_folder.parent == tmp_path  # made under TMPDIR, removed with tmp_path


def test_sample_images_carry_a_gps_position(tmp_path: Path) -> None:
    make_sample_drop(tmp_path / "drop", images=2)
    with Image.open(tmp_path / "drop" / "DJI_0001.JPG") as image:
        gps = image.getexif().get_ifd(0x8825)
    assert gps[1] == "N"
    assert gps[3] == "W"
    assert float(gps[2][0]) == 46.0
    assert (tmp_path / "drop" / ".ready").exists()


def test_submit_wait_uploads_follows_and_downloads(tmp_path: Path) -> None:
    with SimulatedNode(tmp_path / "node", processing_seconds=0.5) as node:
        config = write_config(tmp_path, node.url, [watch(tmp_path, "farm-a")])
        (tmp_path / "presets" / "dsm.yaml").write_text("dsm: true\n")
        folder = tmp_path / "loose" / "survey"
        names = make_drop(folder, 3, marker=None)
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "odx_agent",
                "submit",
                "-c",
                str(config),
                str(folder),
                "--output",
                str(tmp_path / "out"),
                "--preset",
                "dsm",
                "--wait",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        (info,) = node_tasks(node.url).values()
    assert info["imagesCount"] == len(names)
    assert {"name": "dsm", "value": True} in info["options"]
    assert f"results: {tmp_path / 'out' / 'survey'}" in result.stdout
    assert (tmp_path / "out" / "survey" / "odm_orthophoto" / "odm_orthophoto.tif").is_file()


def test_submit_refuses_a_folder_inside_a_watch(tmp_path: Path) -> None:
    with SimulatedNode(tmp_path / "node") as node:
        config = write_config(tmp_path, node.url, [watch(tmp_path, "farm-a")])
        folder = tmp_path / "ingest" / "farm-a" / "inside"
        make_drop(folder, 2)
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "odx_agent",
                "submit",
                "-c",
                str(config),
                str(folder),
                "--output",
                str(tmp_path / "out"),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 2
    assert "is inside watch 'farm-a'" in result.stderr
