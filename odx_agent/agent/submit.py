"""Submitting a drop: options checked, UUID persisted before init, files uploaded once,
commit, and the node's image count verified.

The task UUID is chosen and committed to the state file before ``init`` (sent as
``set-uuid``), and every file is recorded once the node accepted it, so a crash at any
point resumes under the same UUID and sends only what is missing. The node cannot list an
unfinished upload, so after commit its ``imagesCount`` must equal the images sent; if not
(a file arrived twice, or the node lost the partial upload) that task is removed and the
drop is submitted again under a new UUID.
"""

from __future__ import annotations

import os
import stat
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from odx_agent.agent.errors import DropChanged, DropFailed, Interrupted
from odx_agent.agent.lifecycle import drop_log
from odx_agent.agent.runtime import Runtime
from odx_agent.backoff import next_retry_delay
from odx_agent.config import ConfigError, effective_options, load_ticket, validate_options
from odx_agent.drops import DropSnapshot, FileEntry, scan_drop
from odx_agent.nodeodx import Node
from odx_agent.nodeodx.exceptions import (
    NodeConnectionError,
    NodeResponseError,
    NodeServerError,
    TaskNotFoundError,
)
from odx_agent.states import DropState
from odx_agent.store import Drop

FILE_ATTEMPTS = 5
FILE_RETRY_BASE_SECONDS = 1.0  # 0.5-1, 1-2, 2-4, 4-8 s: a 5xx blip costs little
MAX_RESUBMITS = 3


def task_name(drop: Drop, title: str | None) -> str:
    base = f"{drop.watch}/{drop.name}"
    return f"{base}: {title}" if title else base


def _snapshot(runtime: Runtime, drop: Drop) -> DropSnapshot:
    watch = runtime.watch(drop.watch)
    marker = watch.ready.marker if watch else None
    try:
        return scan_drop(Path(drop.path), marker)
    except (FileNotFoundError, NotADirectoryError):
        raise DropFailed(f"the drop folder {drop.path} disappeared") from None


def start_upload(runtime: Runtime, drop: Drop, node_name: str) -> Drop:
    """Given a ready drop and the node chosen for it, check its ticket and options against
    the node, choose and persist the task UUID, and move it to ``uploading``.

    Raise DropFailed for a bad ticket, option or image count; DropChanged when the drop
    changed since it was judged ready.
    """
    watch = runtime.watch(drop.watch)
    if watch is None:
        raise DropFailed(f"watch {drop.watch!r} is no longer configured")
    snapshot = _snapshot(runtime, drop)
    if snapshot.fingerprint() != drop.fingerprint:
        raise DropChanged("the drop changed since it was found ready")
    ticket = None
    if snapshot.ticket is not None:
        try:
            ticket = load_ticket(Path(drop.path) / snapshot.ticket.relative, runtime.config.presets)
        except ConfigError as error:
            raise DropFailed("; ".join(error.lines)) from None
    try:
        options = effective_options(runtime.config, watch, ticket)
    except ConfigError as error:
        raise DropFailed("; ".join(error.lines)) from None
    problems = validate_options(options, runtime.nodes.options(node_name))
    if problems:
        raise DropFailed("; ".join(problems))
    info = runtime.nodes.probe(node_name)
    if info is None:
        raise NodeConnectionError(f"node {node_name} is not reachable")
    if info.max_images is not None and len(snapshot.images) > info.max_images:
        raise DropFailed(
            f"{len(snapshot.images)} images, but node {node_name} takes at most {info.max_images}"
        )
    return runtime.lifecycle.move(
        drop,
        DropState.UPLOADING,
        task_uuid=str(uuid.uuid4()),
        node=node_name,
        options=options,
        title=ticket.name if ticket else None,
        images=len(snapshot.images),
        files=[entry.relative for entry in snapshot.uploads],
        ignored=list(snapshot.ignored),
        commit_sent=False,
        error=None,
    )


def continue_upload(runtime: Runtime, drop: Drop) -> Drop:
    """Given an ``uploading`` drop (new or resumed after a restart), send what the node is
    missing, commit once, verify, and move the drop to ``processing``.

    Return the drop as it now is (``ready`` again when the task had to be abandoned).
    """
    assert drop.task_uuid is not None
    assert drop.node is not None
    client = runtime.nodes.client(drop.node)
    task_uuid = drop.task_uuid
    if not drop.commit_sent:
        snapshot = _snapshot(runtime, drop)
        if [entry.relative for entry in snapshot.uploads] != drop.files:
            raise DropChanged("the drop's files changed during the upload")
        try:
            client.init_task(
                drop.task_uuid,
                name=task_name(drop, drop.title),
                options=drop.options,
                webhook=runtime.callback(drop.task_uuid),
            )
        except NodeResponseError as error:
            if not str(error).startswith("Invalid set-uuid"):
                raise
            # committed before a crash (the UUID belongs to a task now): verify it below
            return _verify(
                runtime, runtime.store.update(drop.id, now=runtime.clock(), commit_sent=True)
            )
        _upload_missing(runtime, drop, client, snapshot)
        drop = runtime.store.update(drop.id, now=runtime.clock(), commit_sent=True)
        _commit(client, task_uuid)
    elif not client.task_exists(task_uuid):
        _commit(client, task_uuid)  # the crash came before the commit reached the node
    return _verify(runtime, drop)


def _commit(client: Node, task_uuid: str) -> None:
    try:
        client.commit_task(task_uuid)
    except TaskNotFoundError:
        pass  # already committed, or lost: _verify asks the node which


def _verify(runtime: Runtime, drop: Drop) -> Drop:
    assert drop.task_uuid is not None
    assert drop.node is not None
    client = runtime.nodes.client(drop.node)
    try:
        info = client.get_task(drop.task_uuid).info()
    except TaskNotFoundError:
        return resubmit(runtime, drop, "the node lost the unfinished upload")
    if info.images_count != drop.images:
        try:
            client.get_task(drop.task_uuid).remove()
        except (NodeResponseError, NodeServerError, NodeConnectionError):
            pass  # an orphan task is harmless: it is never downloaded
        return resubmit(
            runtime, drop, f"the node counted {info.images_count} images, {drop.images} were sent"
        )
    runtime.store.forget_uploads(drop.id)
    return runtime.lifecycle.move(drop, DropState.PROCESSING, transient_since=None)


def resubmit(runtime: Runtime, drop: Drop, reason: str) -> Drop:
    """Abandon the drop's task and submit the drop again under a new UUID (bounded)."""
    if drop.resubmits >= MAX_RESUBMITS:
        raise DropFailed(f"{reason}; gave up after {MAX_RESUBMITS} new submissions")
    drop_log(drop).warning("submitting again under a new task", reason=reason)
    runtime.metrics.retry("upload")
    return runtime.lifecycle.move(
        drop,
        DropState.READY,
        task_uuid=None,
        commit_sent=False,
        resubmits=drop.resubmits + 1,
        error=reason,
        ready_at=drop.ready_at,
    )


def _upload_missing(runtime: Runtime, drop: Drop, client: Node, snapshot: DropSnapshot) -> None:
    """Send every file the node does not have yet, ``uploads_per_drop`` at a time. Each
    worker takes the next file when it is done, so a drop of thousands of images holds no
    more than that many uploads (and no queue of pending jobs) in memory."""
    assert drop.task_uuid is not None
    done = runtime.store.uploaded(drop.id, drop.task_uuid)
    pending = iter([entry for entry in snapshot.uploads if entry.relative not in done])
    taking = threading.Lock()
    failed = threading.Event()

    def work() -> None:
        while not failed.is_set():
            with taking:
                entry = next(pending, None)
            if entry is None:
                return
            try:
                _upload_one(runtime, drop, client, entry, failed)
            except BaseException:
                failed.set()  # the others finish the file they send, then stop
                raise

    workers = max(1, runtime.config.uploads_per_drop)
    with ThreadPoolExecutor(workers, thread_name_prefix=f"upload-{drop.id}") as pool:
        futures = [pool.submit(work) for _ in range(workers)]
    client.close_finished_threads()  # the pool has joined its threads; free their sockets
    errors = [error for future in futures if (error := future.exception()) is not None]
    if errors:
        # raise the failure that stopped the others, not the Interrupted it caused in them
        errors.sort(key=lambda error: isinstance(error, Interrupted))
        raise errors[0]


def _upload_one(
    runtime: Runtime, drop: Drop, client: Node, entry: FileEntry, failed: threading.Event
) -> None:
    assert drop.task_uuid is not None
    path = Path(drop.path) / entry.relative
    for attempt in range(1, FILE_ATTEMPTS + 1):
        if failed.is_set() or runtime.interrupted(drop.id):
            raise Interrupted()
        _check_unchanged(path, entry)
        sent = 0

        def progress(total: int) -> None:
            nonlocal sent
            runtime.metrics.add_upload_bytes(total - sent)
            sent = total

        try:
            client.upload_file(
                drop.task_uuid, path, upload_name=entry.name, progress_callback=progress
            )
        except (NodeConnectionError, NodeServerError) as error:
            if attempt == FILE_ATTEMPTS:
                raise
            runtime.metrics.retry("upload")
            drop_log(drop).info(
                "upload retried", file=entry.relative, attempt=attempt, reason=str(error)
            )
            if runtime.stopping.wait(next_retry_delay(attempt, base=FILE_RETRY_BASE_SECONDS)):
                raise Interrupted() from None
            continue
        runtime.store.record_uploaded(drop.id, drop.task_uuid, entry.relative)
        return


def _check_unchanged(path: Path, entry: FileEntry) -> None:
    """Refuse to send a file that is no longer the regular file we listed."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        raise DropFailed(f"{entry.relative} disappeared during the upload") from None
    if not stat.S_ISREG(info.st_mode) or info.st_size != entry.size:
        raise DropChanged(f"{entry.relative} changed during the upload")
    if os.path.realpath(path) != os.path.abspath(path):
        raise DropChanged(f"{entry.relative} is reached through a link now")
