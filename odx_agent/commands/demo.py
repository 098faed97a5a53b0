"""``odx-agent demo``: the whole pipeline once, on embedded defaults, with nothing else
running: a simulated node on a free loopback port, a watch folder holding one sample drop
of small generated JPEGs with GPS EXIF and a ready marker, the real agent loop, and the
downloaded results."""

from __future__ import annotations

import io
import shutil
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click
import yaml

from odx_agent.config import load_config
from odx_agent.states import FINAL_STATES, DropState

if TYPE_CHECKING:
    from odx_agent.agent import Agent
    from odx_agent.store import Drop

SAMPLE_IMAGES = 5


def _degrees_minutes_seconds(value: float) -> tuple[float, float, float]:
    degrees = int(value)
    minutes_float = (value - degrees) * 60
    minutes = int(minutes_float)
    return (float(degrees), float(minutes), round((minutes_float - minutes) * 60, 3))


def sample_jpeg(index: int, *, latitude: float, longitude: float) -> bytes:
    """Return a small JPEG (64x48, a gradient) whose EXIF carries a GPS position."""
    from PIL import Image

    image = Image.new("RGB", (64, 48))
    image.putdata(
        [((x * 4 + index * 20) % 256, y * 5 % 256, 128) for y in range(48) for x in range(64)]
    )
    exif = Image.Exif()
    exif[0x010F] = "odx-agent demo"  # Make
    exif[0x0110] = "simulated camera"  # Model
    gps = exif.get_ifd(0x8825)
    gps[1] = "N" if latitude >= 0 else "S"
    gps[2] = _degrees_minutes_seconds(abs(latitude))
    gps[3] = "E" if longitude >= 0 else "W"
    gps[4] = _degrees_minutes_seconds(abs(longitude))
    gps[5] = 0
    gps[6] = 120.0
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", exif=exif, quality=85)
    return buffer.getvalue()


def make_sample_drop(folder: Path, *, images: int = SAMPLE_IMAGES, marker: str = ".ready") -> None:
    """Write a drop of ``images`` JPEGs along a short flight line, then its marker."""
    folder.mkdir(parents=True)
    for index in range(images):
        data = sample_jpeg(index, latitude=46.8428 + index * 0.0002, longitude=-91.9941)
        (folder / f"DJI_{index + 1:04d}.JPG").write_bytes(data)
    (folder / marker).write_text("")


def run_demo(*, clean: bool, timeout: float) -> int:
    """Run the demo; return 0 once the sample drop's results are downloaded."""
    from odx_agent.agent import Agent
    from odx_agent.logsetup import configure_logging
    from odx_agent.simnode import SimulatedNode

    configure_logging(level="INFO", fmt="console")
    base = Path(tempfile.mkdtemp(prefix="odx-agent-demo-"))
    (base / "ingest").mkdir()
    (base / "presets").mkdir()
    (base / "presets" / "demo.yaml").write_text("fast-orthophoto: true\northophoto-resolution: 5\n")
    make_sample_drop(base / "ingest" / "flight-001")
    node = SimulatedNode(base / "node", processing_seconds=2.0)
    node.start()
    config_file = base / "agent.yaml"
    config_file.write_text(
        yaml.safe_dump(
            {
                "state_file": "state.sqlite",
                "nodes": [{"name": "sim", "url": node.url, "max_active_tasks": 2}],
                "presets_dir": "presets",
                "poll_interval_seconds": 0.5,
                "metrics": {"listen": "127.0.0.1:0"},
                "watches": [
                    {
                        "name": "demo",
                        "path": "ingest",
                        "output": "results",
                        "preset": "demo",
                        "ready": {"marker": ".ready", "settle_seconds": 0.5},
                    }
                ],
            },
            sort_keys=False,
        )
    )
    agent = Agent(load_config(config_file))
    agent.start()
    try:
        drop = _wait_for_final(agent, timeout)
    finally:
        agent.stop()
        node.stop()
    if drop is None or drop.state != DropState.COMPLETED:
        reason = "timed out" if drop is None else f"{drop.state.value}: {drop.error}"
        click.echo(f"demo failed ({reason}); files kept in {base}", err=True)
        return 1
    output = Path(drop.output or "")
    count = sum(1 for path in output.rglob("*") if path.is_file())
    click.echo("")
    click.echo(f"demo completed: {drop.images} images -> task {drop.task_uuid}")
    click.echo(f"results: {output} ({count} files, report {output / 'odx-report.json'})")
    if clean:
        shutil.rmtree(base, ignore_errors=True)
        click.echo("demo folders removed")
    else:
        click.echo(f"everything the demo made is in {base} (state file, watch, results)")
    return 0


def _wait_for_final(agent: Agent, timeout: float) -> Drop | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        drops = agent.runtime.store.all()
        if drops and drops[0].state in FINAL_STATES:
            return drops[0]
        time.sleep(0.2)
    return None
