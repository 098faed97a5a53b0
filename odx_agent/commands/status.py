"""``status``, ``retry`` and ``cancel``: read and write the state file beside a running daemon."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from odx_agent.states import FINAL_STATES
from odx_agent.store import Store
from odx_agent.timestamps import iso


def status_row(row: dict[str, Any]) -> dict[str, Any]:
    """Given a drop's stored columns, return its status object (the keys are a public
    contract)."""
    return {
        "id": row["id"],
        "watch": row["watch"],
        "drop": row["name"],
        "state": row["state"],
        "task_uuid": row["task_uuid"],
        "node": row["node"],
        "images": row["images"] or 0,
        "error": row["error"],
        "output": row["output"],
        "created_at": iso(row["created_at"]),
        "updated_at": iso(row["updated_at"]),
    }


def status_rows(state_file: Path, *, limit: int | None = None) -> list[dict[str, Any]]:
    """Return the status of every drop in ``state_file`` (none when it does not exist)."""
    if not state_file.exists():
        return []
    store = Store.open(state_file)
    try:
        return [status_row(row) for row in store.status_rows(limit)]
    finally:
        store.close()


def print_status_table(rows: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, header_style="bold")
    for column in ("id", "watch", "drop", "state", "images", "node", "task", "updated", "note"):
        table.add_column(column, overflow="fold")
    for row in rows:
        note = row["error"] or row["output"] or ""
        table.add_row(
            str(row["id"]),
            row["watch"],
            row["drop"],
            row["state"],
            str(row["images"]),
            row["node"] or "",
            (row["task_uuid"] or "")[:8],
            row["updated_at"] or "",
            note,
        )
    console = Console()
    if rows:
        console.print(table)
    else:
        console.print("no drops yet")


def request(state_file: Path, drop_id: int, action: str) -> int:
    """Record an operator's ``retry`` or ``cancel`` of a drop for the daemon to carry out.

    Return the exit code: 0 recorded, 1 no such drop or not possible in its state.
    """
    if not state_file.exists():
        click.echo(f"odx-agent: no state file at {state_file}", err=True)
        return 1
    store = Store.open(state_file)
    try:
        drop = store.find(drop_id)
        if drop is None:
            click.echo(f"odx-agent: no drop with id {drop_id}", err=True)
            return 1
        final = drop.state in FINAL_STATES
        if action == "retry" and not final:
            click.echo(
                f"odx-agent: drop {drop_id} is {drop.state.value}; only failed, canceled or "
                "completed drops can be retried",
                err=True,
            )
            return 1
        if action == "cancel" and final:
            click.echo(f"odx-agent: drop {drop_id} is already {drop.state.value}", err=True)
            return 1
        import time

        store.request(drop_id, action, now=time.time())
    finally:
        store.close()
    click.echo(
        f"{action} of drop {drop_id} ({drop.watch}/{drop.name}) requested; the running "
        "daemon carries it out within a poll interval"
    )
    return 0
