"""The ``odx-agent`` command line: parse arguments, load the config, set up logging once,
call one function per command, return its exit code.

Exit codes: 0 success, 1 a runtime problem (state file locked, node unreachable for
``submit``), 2 an invalid configuration or usage (systemd stops restarting on 2).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
from pathlib import Path
from types import FrameType

import click

from odx_agent.config import AgentConfig, ConfigError, load_config

CONFIG_OPTION = click.option(
    "-c",
    "--config",
    "config_path",
    required=True,
    type=click.Path(path_type=Path),
    help="The agent's YAML configuration file.",
)


def _load(config_path: Path) -> AgentConfig:
    """Load the config or leave with exit code 2, each problem on its own line."""
    try:
        return load_config(config_path)
    except ConfigError as error:
        for line in error.lines:
            click.echo(line, err=True)
        sys.exit(2)


def _logging(config: AgentConfig) -> None:
    from odx_agent.logsetup import configure_logging

    configure_logging(
        level=config.log.level,
        fmt=config.log.format,
        secrets=[node.token for node in config.nodes if node.token],
    )


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="odx-agent")
def main() -> None:
    """odx-agent: watch folders for drone-image drops, process each on a NodeODX node,
    and download the results."""


@main.command()
@CONFIG_OPTION
def run(config_path: Path) -> None:
    """Run the daemon in the foreground (SIGTERM/SIGINT stop it, SIGHUP reloads)."""
    from odx_agent.agent import Agent
    from odx_agent.agent.startup import warn_about_plain_tokens
    from odx_agent.store import StoreError

    # Handlers go in before anything slow: a SIGHUP or SIGTERM that arrives while the state
    # file is opened must not kill the process with the default action.
    pending: list[int] = []
    agent: Agent | None = None

    def on_signal(number: int, _frame: FrameType | None) -> None:
        if agent is None:
            pending.append(number)
        elif number == signal.SIGHUP:
            agent.reload()
        else:
            agent.runtime.stopping.set()
            agent.wake()

    for handled in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(handled, on_signal)
    config = _load(config_path)
    _logging(config)
    warn_about_plain_tokens(config)
    try:
        agent = Agent(config)
    except StoreError as error:
        click.echo(f"odx-agent: {error}", err=True)
        sys.exit(1)
    for number in pending:
        on_signal(number, None)
    code = agent.run()
    # A job still waiting on a hanging node would hold the interpreter's exit for the whole
    # client timeout (pool threads are joined at exit); every state change is committed,
    # so the work resumes at the next start. Flush what was logged and leave now.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


@main.command()
@CONFIG_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array instead of a table.")
@click.option("--limit", type=int, default=None, help="Only the newest N drops.")
def status(config_path: Path, as_json: bool, limit: int | None) -> None:
    """Show every drop the state file knows, one row each."""
    from odx_agent.commands.status import print_status_table, status_rows

    config = _load(config_path)
    rows = status_rows(config.state_file, limit=limit)
    if as_json:
        # one object per line: grep-able, and the C encoder (indent= would use the slow one)
        click.echo("[\n" + ",\n".join(map(json.dumps, rows)) + "\n]" if rows else "[]")
    else:
        print_status_table(rows)


@main.command()
@CONFIG_OPTION
@click.argument("drop_id", type=int)
def retry(config_path: Path, drop_id: int) -> None:
    """Process a failed, canceled or completed drop again, under a new task."""
    from odx_agent.commands.status import request

    sys.exit(request(_load(config_path).state_file, drop_id, "retry"))


@main.command()
@CONFIG_OPTION
@click.argument("drop_id", type=int)
def cancel(config_path: Path, drop_id: int) -> None:
    """Cancel a drop (and its node task, if it has one)."""
    from odx_agent.commands.status import request

    sys.exit(request(_load(config_path).state_file, drop_id, "cancel"))


@main.command(name="check-config")
@CONFIG_OPTION
def check_config(config_path: Path) -> None:
    """Check the configuration, its presets and the drops' tickets (against a node's
    options when one answers). Exit 0 when valid, 2 with one line per problem."""
    from odx_agent.commands.check import check_against_nodes

    config = _load(config_path)
    problems, notes = check_against_nodes(config)
    for note in notes:
        click.echo(note, err=True)
    for problem in problems:
        click.echo(problem, err=True)
    if problems:
        sys.exit(2)
    click.echo(f"{config_path}: valid ({len(config.watches)} watches, {len(config.nodes)} nodes)")


@main.command()
@CONFIG_OPTION
@click.argument("path", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option(
    "--output",
    "output",
    required=True,
    type=click.Path(path_type=Path),
    help="Results land in OUTPUT/<folder name>/.",
)
@click.option("--preset", default=None, help="A preset of presets_dir (default: none).")
@click.option("--wait", is_flag=True, help="Follow processing and download the results.")
def submit(config_path: Path, path: Path, output: Path, preset: str | None, wait: bool) -> None:
    """Submit one folder (not inside a watch) now."""
    from odx_agent.commands.submit import submit_folder

    config = _load(config_path)
    _logging(config)
    sys.exit(submit_folder(config, path, output=output, preset=preset, wait=wait))


@main.command(name="simulate-node")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=3000, show_default=True, type=int)
@click.option("--token", default="", help="Require this token (?token=).")
@click.option("--processing-seconds", default=3.0, show_default=True, type=float)
@click.option("--fail-tasks", is_flag=True, help="End every task FAILED.")
@click.option("--drop-uploads", is_flag=True, help="Answer 500 to about half the uploads.")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Keep tasks here (survives restarts); default a temporary folder.",
)
@click.option("--max-images", type=int, default=None)
@click.option("--max-parallel-tasks", type=int, default=1, show_default=True)
def simulate_node(
    host: str,
    port: int,
    token: str,
    processing_seconds: float,
    fail_tasks: bool,
    drop_uploads: bool,
    seed: int,
    data_dir: Path | None,
    max_images: int | None,
    max_parallel_tasks: int,
) -> None:
    """Serve a simulated NodeODX node: a test and demo tool, not a processing node.

    It answers the NodeODX API like a real node in test mode and serves a canned result
    archive; the real processing node is NodeODX (docker run -p 3000:3000 webodm/nodeodx).
    """
    from odx_agent.simnode import run_simulated_node

    sys.exit(
        run_simulated_node(
            host=host,
            port=port,
            token=token,
            processing_seconds=processing_seconds,
            fail_tasks=fail_tasks,
            drop_uploads=drop_uploads,
            seed=seed,
            data_dir=data_dir,
            max_images=max_images,
            max_parallel_tasks=max_parallel_tasks,
        )
    )


@main.command()
@click.option("--clean", is_flag=True, help="Remove the demo folders at the end.")
@click.option("--timeout", default=120.0, show_default=True, type=float)
def demo(clean: bool, timeout: float) -> None:
    """Run the whole pipeline once on embedded defaults: a simulated node, a watch folder
    with a sample drop, the agent loop, and the downloaded results."""
    from odx_agent.commands.demo import run_demo

    sys.exit(run_demo(clean=clean, timeout=timeout))
