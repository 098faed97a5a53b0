"""The node client: ``Node`` (node information, task creation, resumable upload steps) and
``Task`` (status, output, control, downloads), drop-in compatible with the seed's API."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from urllib.parse import parse_qs, quote, urlencode, urlparse, urlunparse

from odx_agent.nodeodx import download, upload
from odx_agent.nodeodx.exceptions import (
    NodeConnectionError,
    NodeResponseError,
    NodeServerError,
    TaskFailedError,
    TaskNotFoundError,
)
from odx_agent.nodeodx.http import REDACTED, HttpClient, malformed
from odx_agent.nodeodx.types import NodeInfo, NodeOption, TaskInfo, TaskStatus

DEFAULT_CONNECT_TIMEOUT = 10.0


def options_to_json(options: Mapping[str, object]) -> str:
    """Given options as a mapping, return the node's JSON list of ``{"name", "value"}``."""
    return json.dumps([{"name": name, "value": value} for name, value in options.items()])


def _version_tuple(version: str) -> tuple[int, ...] | None:
    try:
        return tuple(int(part) for part in version.strip().split("."))
    except ValueError:
        return None


class Node:
    """A client of one NodeODX node at ``host``:``port``. ``timeout`` is the read timeout in
    seconds; ``verify`` checks TLS certificates (True, or a CA bundle path); ``scheme`` is
    ``https`` for port 443 unless given."""

    def __init__(
        self,
        host: str,
        port: int,
        token: str = "",
        timeout: float = 30,
        *,
        verify: bool | str = True,
        scheme: str | None = None,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    ) -> None:
        self.host = host
        self.port = port
        self.token = token
        self.timeout = timeout
        self.verify = verify
        self.scheme = scheme or ("https" if port == 443 else "http")
        self._http = HttpClient(
            self._base_url(),
            token,
            connect_timeout=min(connect_timeout, timeout),
            read_timeout=timeout,
            verify=verify,
        )

    @staticmethod
    def from_url(url: str, timeout: float = 30, *, verify: bool | str = True) -> Node:
        """Given ``proto://host:port/?token=value``, return a Node for it."""
        parts = urlparse(url)
        scheme = parts.scheme.lower() or "http"
        port = parts.port or (443 if scheme == "https" else 80)
        token = parse_qs(parts.query).get("token", [""])[0]
        return Node(parts.hostname or "", port, token, timeout, verify=verify, scheme=scheme)

    def __repr__(self) -> str:
        token = REDACTED if self.token else ""
        return (
            f"Node(host={self.host!r}, port={self.port!r}, token={token!r}, scheme={self.scheme!r})"
        )

    def __enter__(self) -> Node:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the pooled connections. The node stays usable; new ones open on demand."""
        self._http.close()

    def close_finished_threads(self) -> None:
        """Close the connections held for threads that have ended. Call it after a pool of
        short-lived upload threads is done, so their keep-alive sockets do not idle on."""
        self._http.close_finished_threads()

    def _netloc(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default_port = 443 if self.scheme == "https" else 80
        return host if self.port == default_port else f"{host}:{self.port}"

    def _base_url(self) -> str:
        return f"{self.scheme}://{self._netloc()}"

    def url(self, url: str, query: Mapping[str, object] = {}) -> str:  # the seed's; never mutated
        """Given a path and query values, return the absolute URL (token included: never
        print it)."""
        values = dict(query)
        if self.token:
            values["token"] = self.token
        return urlunparse((self.scheme, self._netloc(), url, "", urlencode(values), ""))

    # Node information

    def info(self) -> NodeInfo:
        """Return information about this node."""
        answer = self._http.call("GET", "/info")
        if not isinstance(answer, dict):
            raise malformed("/info", answer, self._http.secrets)
        return NodeInfo(answer)

    def options(self) -> list[NodeOption]:
        """Return the options this node accepts for new tasks."""
        answer = self._http.call("GET", "/options")
        try:
            return [NodeOption(**option) for option in answer]
        except TypeError:
            failure = malformed("/options", answer, self._http.secrets)
        raise failure

    @staticmethod
    def compare_version(node_version: str | None, compare_version: str) -> int:
        """Given two dotted versions, return -1, 0 or 1 as the first is lower, equal or
        higher. An unreadable node version counts as lower."""
        mine = _version_tuple(node_version or "")
        theirs = _version_tuple(compare_version)
        if mine is None or theirs is None:
            return -1
        return (mine > theirs) - (mine < theirs)

    def version_greater_or_equal_than(self, version: str) -> bool:
        """Given a dotted version, return True when this node's version is at least it."""
        return self.compare_version(self.info().version, version) >= 0

    # Task creation, in resumable steps

    def init_task(
        self,
        task_uuid: str,
        *,
        name: str | None = None,
        options: Mapping[str, object] | None = None,
        skip_post_processing: bool = False,
        webhook: str | None = None,
        outputs: Sequence[str] | None = None,
    ) -> str:
        """Given a UUID chosen by the caller, open (or reopen, keeping uploaded files) an
        upload session for it and return the UUID. Raise NodeResponseError when the node
        refuses (a bad option value, a UUID already committed), NodeServerError when it
        answers another UUID."""
        answered = self._init(task_uuid, name, options, skip_post_processing, webhook, outputs)
        if answered != task_uuid:
            raise NodeServerError(f"Node answered UUID {answered!r} for set-uuid {task_uuid!r}")
        return answered

    def _init(
        self,
        task_uuid: str | None,
        name: str | None,
        options: Mapping[str, object] | None,
        skip_post_processing: bool,
        webhook: str | None,
        outputs: Sequence[str] | None,
    ) -> str:
        fields: dict[str, tuple[None, str]] = {"options": (None, options_to_json(options or {}))}
        if name is not None:
            fields["name"] = (None, name)
        if skip_post_processing:
            fields["skipPostProcessing"] = (None, "true")
        if webhook is not None:
            fields["webhook"] = (None, webhook)
        if outputs:
            fields["outputs"] = (None, json.dumps(list(outputs)))
        headers = {"set-uuid": task_uuid} if task_uuid is not None else {}
        answer = self._http.call("POST", "/task/new/init", files=fields, headers=headers)
        if not (isinstance(answer, dict) and isinstance(answer.get("uuid"), str)):
            raise malformed("/task/new/init", answer, self._http.secrets)
        return str(answer["uuid"])

    def upload_file(
        self,
        task_uuid: str,
        path: str | os.PathLike[str],
        *,
        upload_name: str | None = None,
        progress_callback: Callable[[int], None] | None = None,
    ) -> None:
        """Given an open upload session, send one file once, streamed from disk;
        ``progress_callback`` gets the bytes sent so far. The caller decides on retries:
        an upload that failed late may have arrived, and a second copy would be kept.
        Raise OSError when the file cannot be read, or the node errors."""
        upload.upload_file(
            self._http,
            task_uuid,
            path,
            upload_name=upload_name,
            progress_callback=progress_callback,
        )

    def commit_task(self, task_uuid: str) -> Task:
        """Given an upload session with files, start processing and return the Task.
        Raise TaskNotFoundError when no session is open (e.g. already committed)."""
        answer = self._http.call("POST", f"/task/new/commit/{quote(task_uuid, safe='')}")
        if not (isinstance(answer, dict) and isinstance(answer.get("uuid"), str)):
            raise malformed("/task/new/commit", answer, self._http.secrets)
        return Task(self, str(answer["uuid"]))

    def task_exists(self, task_uuid: str) -> bool:
        """Given a UUID, return True when the node holds a committed task with it (an
        upload session that is not committed yet does not count)."""
        try:
            self.get_task(task_uuid).info()
        except TaskNotFoundError:
            return False
        return True

    def list_tasks(self) -> list[str]:
        """Return the UUIDs of every task the node holds."""
        answer = self._http.call("GET", "/task/list")
        if isinstance(answer, list) and all(
            isinstance(item, dict) and isinstance(item.get("uuid"), str) for item in answer
        ):
            return [str(item["uuid"]) for item in answer]
        raise malformed("/task/list", answer, self._http.secrets)

    def create_task(
        self,
        files: Sequence[str | os.PathLike[str]],
        options: Mapping[str, object] = {},  # the seed's signature; never mutated
        name: str | None = None,
        progress_callback: Callable[[float], None] | None = None,
        skip_post_processing: bool = False,
        webhook: str | None = None,
        outputs: Sequence[str] = [],  # the seed's signature; never mutated
        parallel_uploads: int = 10,
        max_retries: int = 5,
        retry_timeout: float = 5,
        task_uuid: str | None = None,
    ) -> Task:
        """Given image paths (and optional GCP files), create a task, upload the files with
        ``parallel_uploads`` threads (each tried up to ``max_retries`` more times, waiting
        ``attempt * retry_timeout`` seconds), commit it and return the Task.
        ``progress_callback`` gets the percentage of files uploaded.
        Raise NodeResponseError("Not enough images") for no files and OSError for a file
        that cannot be read, both before anything is sent; node errors otherwise."""
        if len(files) == 0:
            raise NodeResponseError("Not enough images")
        paths = upload.check_readable(files)
        uuid = self._init(task_uuid, name, options, skip_post_processing, webhook, outputs)
        try:
            upload.upload_all(
                lambda path: self.upload_file(uuid, path),
                paths,
                parallel_uploads=parallel_uploads,
                max_retries=max_retries,
                retry_timeout=retry_timeout,
                progress_callback=progress_callback,
            )
        finally:
            # The upload threads have ended; their keep-alive sockets would idle until
            # the next upload otherwise.
            self.close_finished_threads()
        if progress_callback is not None:
            progress_callback(100.0)
        return self.commit_task(uuid)

    def get_task(self, uuid: str) -> Task:
        """Given a UUID, return the Task object for it (the node is not asked)."""
        return Task(self, uuid)


class Task:
    """A task on a node, known by its UUID."""

    def __init__(self, node: Node, uuid: str) -> None:
        self.node = node
        self.uuid = uuid

    def __repr__(self) -> str:
        return f"Task(node={self.node!r}, uuid={self.uuid!r})"

    def _path(self, suffix: str) -> str:
        return f"/task/{quote(self.uuid, safe='')}/{suffix}"

    def info(self, with_output: int | None = None) -> TaskInfo:
        """Return this task's information; with ``with_output`` set, its console output
        from that line on. Raise TaskNotFoundError when the node does not know it."""
        query = {} if with_output is None else {"with_output": with_output}
        http = self.node._http
        answer = http.call("GET", self._path("info"), query=query)
        try:
            return TaskInfo(answer)
        except (KeyError, TypeError, ValueError):
            failure = malformed("task info", answer, http.secrets)
        raise failure

    def output(self, line: int = 0) -> list[str]:
        """Return the console output from ``line`` on (negative: the last lines)."""
        http = self.node._http
        answer = http.call("GET", self._path("output"), query={"line": line})
        if isinstance(answer, list) and all(isinstance(item, str) for item in answer):
            return answer
        raise malformed("task output", answer, http.secrets)

    def _control(self, action: str, data: dict[str, str]) -> bool:
        answer = self.node._http.call("POST", f"/task/{action}", data=data)
        if not isinstance(answer, dict):
            raise malformed(f"/task/{action}", answer, self.node._http.secrets)
        return bool(answer.get("success", False))

    def cancel(self) -> bool:
        """Cancel this task; return whether the node did."""
        return self._control("cancel", {"uuid": self.uuid})

    def remove(self) -> bool:
        """Remove this task and its files from the node; return whether the node did."""
        return self._control("remove", {"uuid": self.uuid})

    def restart(self, options: Mapping[str, object] | None = None) -> bool:
        """Restart this task, with new options if given; return whether the node did."""
        data = {"uuid": self.uuid}
        if options is not None:
            data["options"] = options_to_json(options)
        return self._control("restart", data)

    def download_archive(
        self,
        destination_dir: Path,
        *,
        progress_callback: Callable[[int, int | None], None] | None = None,
        deadline_seconds: float | None = None,
        min_bytes_per_second: int = 16384,
    ) -> Path:
        """Given a directory, download this task's ``all.zip`` into it, verified and
        atomically, and return its path. See ``download.download_archive``."""
        return download.download_archive(
            self.node._http,
            self.uuid,
            Path(destination_dir),
            progress_callback=progress_callback,
            deadline_seconds=deadline_seconds,
            min_bytes_per_second=min_bytes_per_second,
        )

    def download_zip(
        self,
        destination: str | os.PathLike[str],
        progress_callback: Callable[[float], None] | None = None,
        parallel_downloads: int = 16,
        parallel_chunks_size: int = 10,
    ) -> str:
        """Given a directory, download this task's archive into it and return its path.
        ``progress_callback`` gets a percentage. ``parallel_downloads`` and
        ``parallel_chunks_size`` are accepted for compatibility; NodeODX serves no ranges.
        Raise NodeResponseError when the task has not completed."""
        status = self.info().status
        if status != TaskStatus.COMPLETED:
            raise NodeResponseError(f"Cannot download task, task status is {status}")

        def report(received: int, total: int | None) -> None:
            if progress_callback is not None and total:
                progress_callback(100.0 * received / total)

        return str(self.download_archive(Path(destination), progress_callback=report))

    def download_assets(
        self,
        destination: str | os.PathLike[str],
        progress_callback: Callable[[float], None] | None = None,
        parallel_downloads: int = 16,
        parallel_chunks_size: int = 10,
    ) -> str:
        """Given a directory that does not exist yet or is empty, download this task's
        archive and extract it there safely; return the directory. Raise FileExistsError
        when the directory holds anything, UnsafeArchiveError or InsufficientSpaceError from
        the extraction, and as ``download_zip`` does."""
        from odx_agent.nodeodx.extract import safe_extract

        target = Path(destination)
        target.parent.mkdir(parents=True, exist_ok=True)
        # The archive waits in a hidden sibling folder: the extraction wants its
        # destination empty, and the archive must not land among the results.
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.download-", dir=target.parent))
        try:
            archive = self.download_zip(staging, progress_callback)
            safe_extract(Path(archive), target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return str(target)

    def wait_for_completion(
        self,
        status_callback: Callable[[TaskInfo], None] | None = None,
        interval: float = 3,
        max_retries: int = 5,
        retry_timeout: float = 5,
    ) -> None:
        """Block until the task completes, polling every ``interval`` seconds;
        ``status_callback`` gets each TaskInfo. A connection error is tried again up to
        ``max_retries`` times, waiting ``attempt * retry_timeout`` seconds.
        Raise TaskFailedError when the task fails or is canceled."""
        retry = 0
        while True:
            try:
                info = self.info()
            except NodeConnectionError:
                if retry >= max_retries:
                    raise
                retry += 1
                time.sleep(retry * retry_timeout)
                continue
            retry = 0
            if status_callback is not None:
                status_callback(info)
            if info.status == TaskStatus.COMPLETED:
                return
            if info.status in (TaskStatus.FAILED, TaskStatus.CANCELED):
                detail = f": {info.last_error}" if info.last_error else ""
                raise TaskFailedError(f"Task {self.uuid} ended {info.status.name}{detail}")
            time.sleep(interval)


__all__ = ["Node", "Task", "options_to_json"]
