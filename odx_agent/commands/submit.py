"""``odx-agent submit``: one folder outside any watch, now, with progress bars."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import click
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

from odx_agent.agent.nodes import make_client
from odx_agent.agent.outputs import move_aside
from odx_agent.config import AgentConfig, validate_options
from odx_agent.drops import scan_drop, why_unusable
from odx_agent.nodeodx.exceptions import GenericError, TaskFailedError
from odx_agent.nodeodx.extract import safe_extract


def _inside_a_watch(config: AgentConfig, folder: Path) -> str | None:
    resolved = folder.resolve()
    for watch in config.watches:
        if resolved.is_relative_to(watch.path.resolve()):
            return watch.name
    return None


def submit_folder(
    config: AgentConfig, folder: Path, *, output: Path, preset: str | None, wait: bool
) -> int:
    """Submit ``folder`` to the first configured node; with ``wait``, follow processing and
    put the results in ``output/<folder name>/``. Return the exit code."""
    watch = _inside_a_watch(config, folder)
    if watch is not None:
        click.echo(f"odx-agent: {folder} is inside watch {watch!r}: the daemon takes it", err=True)
        return 2
    if preset is not None and preset not in config.presets:
        known = ", ".join(sorted(config.presets)) or "none"
        click.echo(f"odx-agent: unknown preset {preset!r} (known: {known})", err=True)
        return 2
    snapshot = scan_drop(folder, None)
    unusable = why_unusable(snapshot, min_images=1)
    if unusable:
        click.echo(f"odx-agent: {folder}: {unusable}", err=True)
        return 2
    node_config = config.nodes[0]
    client = make_client(node_config.base_url, node_config.token)
    options = dict(config.presets[preset]) if preset else {}
    try:
        problems = validate_options(options, client.options())
        if problems:
            for problem in problems:
                click.echo(f"odx-agent: {problem}", err=True)
            return 2
        with _progress() as progress:
            bar = progress.add_task("upload", total=100)
            task = client.create_task(
                [str(folder / entry.relative) for entry in snapshot.uploads],
                options,
                name=f"submit/{folder.name}",
                progress_callback=lambda percent: progress.update(bar, completed=percent),
                parallel_uploads=config.uploads_per_drop,
            )
        click.echo(f"task {task.uuid} created on node {node_config.name}")
        if not wait:
            return 0
        with _progress() as progress:
            bar = progress.add_task("processing", total=100)
            task.wait_for_completion(
                status_callback=lambda info: progress.update(bar, completed=info.progress),
                interval=config.poll_interval_seconds,
            )
        output.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=output, prefix=".odx-staging-") as staging:
            archive = task.download_archive(Path(staging))
            result = Path(staging) / "result"
            safe_extract(archive, result)
            final = output / folder.name
            move_aside(final, time.time())
            result.rename(final)
        click.echo(f"results: {final}")
    except TaskFailedError as error:
        click.echo(f"odx-agent: processing failed: {error}", err=True)
        return 1
    except GenericError as error:
        click.echo(f"odx-agent: {error}", err=True)
        return 1
    finally:
        client.close()
    return 0


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), TimeElapsedColumn()
    )
