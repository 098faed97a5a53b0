"""The NodeODX endpoints of the simulated node: what each one reads and answers."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from odx_agent.simnode.console import select_lines, visible_output
from odx_agent.simnode.formdata import read_form
from odx_agent.simnode.jsvalues import parse_int, parse_json
from odx_agent.simnode.tasks import NodeError, Status
from odx_agent.simnode.validate import catalogue_bytes, filter_options

if TYPE_CHECKING:
    from odx_agent.simnode.server import NodeApp, NodeRequestHandler

NODE_VERSION = "2.3.1"
_UUID = re.compile(
    r"^[0-9a-f]{8}-[0-9a-f]{4}-[1-7][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$", re.IGNORECASE
)
_TASK_ROUTE = re.compile(r"^/task/([^/]+)/(info|output|download/([^/]+))$")
_NOT_FOUND_PAGE = (
    '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>Error</title>\n'
    "</head>\n<body>\n<pre>Cannot {method} {path}</pre>\n</body>\n</html>\n"
)


def dispatch(handler: NodeRequestHandler, app: NodeApp, method: str) -> None:
    """Given a request that passed the token check, answer it."""
    path = handler.path_only
    try:
        if method == "GET":
            _dispatch_get(handler, app, path)
        elif method == "POST":
            _dispatch_post(handler, app, path)
        else:
            _not_found(handler, method, path)
    except NodeError as error:
        handler.drain_body()
        handler.send_json(error.body)


def _dispatch_get(handler: NodeRequestHandler, app: NodeApp, path: str) -> None:
    if path == "/info":
        handler.send_json(_node_info(app))
    elif path == "/options":
        handler.send_raw(200, catalogue_bytes(), "application/json; charset=utf-8")
    elif path == "/auth/info":
        handler.send_json(
            {
                "message": "Authentication not available on this node",
                "loginUrl": None,
                "registerUrl": None,
            }
        )
    elif path == "/task/list":
        handler.send_json([{"uuid": task.uuid} for task in app.registry.committed_tasks()])
    elif match := _TASK_ROUTE.match(path):
        task_uuid, action, asset = match.groups()
        if action == "info":
            _task_info(handler, app, task_uuid)
        elif action == "output":
            task = app.registry.find(task_uuid)
            line = _int_parameter(handler.query.get("line"))
            handler.send_json(select_lines(visible_output(task.status, task.progress), line))
        else:
            _download(handler, app, task_uuid, asset)
    else:
        _not_found(handler, "GET", path)


def _dispatch_post(handler: NodeRequestHandler, app: NodeApp, path: str) -> None:
    if path == "/task/new/init":
        handler.send_json({"uuid": _init(handler, app)})
    elif path.startswith("/task/new/upload/"):
        _upload(handler, app, path.removeprefix("/task/new/upload/"))
    elif path.startswith("/task/new/commit/"):
        task_uuid = path.removeprefix("/task/new/commit/")
        app.registry.commit(task_uuid)
        handler.send_json({"uuid": task_uuid})
    elif path == "/task/new":
        _new_in_one_request(handler, app)
    elif path in ("/task/cancel", "/task/remove", "/task/restart"):
        _task_command(handler, app, path.removeprefix("/task/"))
    else:
        _not_found(handler, "POST", path)


def _node_info(app: NodeApp) -> dict[str, Any]:
    tasks = app.registry.committed_tasks()
    total, available = _memory()
    return {
        "version": NODE_VERSION,
        "taskQueueCount": sum(task.status in (Status.QUEUED, Status.RUNNING) for task in tasks),
        "totalMemory": total,
        "availableMemory": available,
        "cpuCores": os.cpu_count() or 1,
        "maxImages": app.max_images,
        "maxParallelTasks": app.max_parallel_tasks,
        "engineVersion": "?",
        "engine": "odx",
    }


def _memory() -> tuple[int, int]:
    figures: dict[str, int] = {}
    try:
        with Path("/proc/meminfo").open(encoding="ascii") as meminfo:
            for line in meminfo:
                key, _, rest = line.partition(":")
                figures[key] = int(rest.split()[0]) * 1024
    except (OSError, ValueError, IndexError):
        pass  # not Linux: report the fixed figures below
    total = figures.get("MemTotal", 8 << 30)
    return total, figures.get("MemAvailable", total // 2)


def _task_info(handler: NodeRequestHandler, app: NodeApp, task_uuid: str) -> None:
    task = app.registry.find(task_uuid)
    info = task.info()
    if "with_output" in handler.query:
        line = _int_parameter(handler.query["with_output"])
        info["output"] = select_lines(visible_output(task.status, task.progress), line)
    handler.send_json(info)


def _download(handler: NodeRequestHandler, app: NodeApp, task_uuid: str, asset: str) -> None:
    task = app.registry.find(task_uuid)
    if asset != "all.zip":
        raise NodeError("Invalid asset")
    if task.status != Status.COMPLETED:
        raise NodeError("Asset not ready")
    headers = {
        "Content-Disposition": "attachment; filename=all.zip",
        "Content-Type": "application/zip",
    }
    handler.send_file(app.archive, headers)


def _init(handler: NodeRequestHandler, app: NodeApp) -> str:
    form = read_form(handler.body_chunks(), handler.headers.get("Content-Type", ""), None)
    return _open_session(app, handler.headers.get("set-uuid"), form.fields)


def _open_session(app: NodeApp, requested: str | None, fields: dict[str, str]) -> str:
    """Given the set-uuid header and the init fields, check them and create or renew the
    upload session; return its UUID. Raise NodeError with the node's message."""
    if requested is not None and not _UUID.match(requested):
        raise NodeError(f"Invalid set-uuid: {requested}")
    checked: dict[str, Any] = {"name": fields.get("name", "")}
    try:
        checked["options"] = filter_options(fields.get("options"))
        if fields.get("outputs"):
            checked["outputs"] = parse_json(fields["outputs"])
    except ValueError as error:
        raise NodeError(str(error)) from None
    checked["webhook"] = fields.get("webhook", "")
    checked["skip_post_processing"] = fields.get("skipPostProcessing", "") in ("true", "1")
    date_created = parse_int(fields.get("dateCreated", ""))
    if date_created == date_created:  # not NaN
        checked["date_created"] = int(date_created)
    return app.registry.init(requested, checked)


def _upload(handler: NodeRequestHandler, app: NodeApp, task_uuid: str) -> None:
    if app.should_drop_upload():
        handler.drain_body()
        handler.send_raw(500, b"Internal Server Error", "text/plain; charset=utf-8")
        return
    folder = app.registry.upload_dir(task_uuid)
    form = read_form(handler.body_chunks(), handler.headers.get("Content-Type", ""), folder)
    if not form.files:
        raise NodeError("Need at least 1 file.", no_retry=True)
    handler.send_json({"success": True})


def _new_in_one_request(handler: NodeRequestHandler, app: NodeApp) -> None:
    # One-shot creation: files land in a fresh session, the fields apply once all is read.
    requested = handler.headers.get("set-uuid")
    if requested is not None and not _UUID.match(requested):
        raise NodeError(f"Invalid set-uuid: {requested}")
    task_uuid = app.registry.init(requested, {})
    folder = app.registry.upload_dir(task_uuid)
    form = read_form(handler.body_chunks(), handler.headers.get("Content-Type", ""), folder)
    _open_session(app, task_uuid, form.fields)
    app.registry.commit(task_uuid)
    handler.send_json({"uuid": task_uuid})


def _task_command(handler: NodeRequestHandler, app: NodeApp, command: str) -> None:
    form = read_form(handler.body_chunks(), handler.headers.get("Content-Type", ""), None)
    task_uuid = form.fields.get("uuid")
    if not task_uuid:
        raise NodeError("uuid param missing.")
    try:
        if command == "cancel":
            app.registry.cancel(task_uuid)
        elif command == "remove":
            app.registry.remove(task_uuid)
        else:
            options = form.fields.get("options")
            try:
                accepted = None if options is None else filter_options(options)
            except ValueError as error:
                raise NodeError(str(error)) from None
            app.registry.restart(task_uuid, accepted)
    except NodeError as error:
        handler.send_json({"success": False, "error": str(error)})
        return
    handler.send_json({"success": True})


def _int_parameter(raw: str | None) -> int:
    number = parse_int(raw if raw is not None else "")
    return int(number) if number == number else 0


def _not_found(handler: NodeRequestHandler, method: str, path: str) -> None:
    handler.drain_body()
    page = _NOT_FOUND_PAGE.format(method=method, path=path).encode("utf-8")
    handler.send_raw(404, page, "text/html; charset=utf-8")
