"""The client against the simulated node over real HTTP: the seed's documented examples,
a full create/wait/download round trip, the resumable upload steps, and bad input."""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

import odx_agent.simnode
from odx_agent.nodeodx import (
    Node,
    NodeResponseError,
    NodeServerError,
    Task,
    TaskFailedError,
    TaskInfo,
    TaskNotFoundError,
    TaskStatus,
)
from odx_agent.simnode import SimulatedNode

SAMPLE_ARCHIVE = Path(odx_agent.simnode.__file__).parent / "data" / "sample-all.zip"


@pytest.fixture
def simnode(tmp_path: Path) -> Iterator[SimulatedNode]:
    with SimulatedNode(tmp_path / "node", processing_seconds=60.0) as node:
        yield node


@pytest.fixture
def quick_simnode(tmp_path: Path) -> Iterator[SimulatedNode]:
    with SimulatedNode(tmp_path / "quick-node", processing_seconds=0.2) as node:
        yield node


@pytest.fixture
def node(simnode: SimulatedNode) -> Iterator[Node]:
    with Node("127.0.0.1", simnode.port) as client:
        yield client


@pytest.fixture
def images(tmp_path: Path) -> list[Path]:
    folder = tmp_path / "images"
    folder.mkdir()
    paths = []
    for index, size in enumerate((3000, 5000)):
        path = folder / f"image_{index + 1}.jpg"
        path.write_bytes(os.urandom(size))
        paths.append(path)
    return paths


def test_version_comparison_follows_the_seed_example(node: Node) -> None:
    assert node.version_greater_or_equal_than("1.3.1") is True
    assert node.version_greater_or_equal_than("10.5.1") is False
    assert node.version_greater_or_equal_than("2.3.1") is True


def test_info_and_options_read_the_nodes_answers(node: Node) -> None:
    info = node.info()
    assert (info.version, info.engine, info.max_images, info.max_parallel_tasks) == (
        "2.3.1",
        "odx",
        None,
        1,
    )
    assert info.task_queue_count == 0
    options = node.options()
    assert len(options) == 80
    assert options[0].name == "end-with"


def test_create_task_follows_the_seed_example(tmp_path: Path, images: list[Path]) -> None:
    with SimulatedNode(tmp_path / "seed-example", processing_seconds=5.0) as sim:
        node = Node("127.0.0.1", sim.port)
        task = node.create_task(
            [str(path) for path in images], {"orthophoto-resolution": 2, "dsm": True}
        )
        info = task.info()
        assert repr(info.status) == "<TaskStatus.RUNNING: 20>"
        assert info.last_error == ""
        assert task.info().images_count == 2
        assert {"name": "dsm", "value": True} in info.options
        # The node prints its console lines as processing advances.
        deadline = time.monotonic() + 4.0
        while len(task.output()) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert task.output()[0:2] == [
            "DJI_0131.JPG - DJI_0313.JPG has 1 candidate matches",
            "DJI_0131.JPG - DJI_0177.JPG has 3 candidate matches",
        ]


def test_get_task_returns_a_task_without_asking_the_node(
    node: Node, simnode: SimulatedNode
) -> None:
    task = node.get_task("00000000-0000-0000-0000-000000000000")
    assert repr(task.__class__) == "<class 'odx_agent.nodeodx.api.Task'>"
    assert task.uuid == "00000000-0000-0000-0000-000000000000"
    assert simnode.requests_seen() == []


def test_round_trip_downloads_the_nodes_archive(
    quick_simnode: SimulatedNode, images: list[Path], tmp_path: Path
) -> None:
    node = Node("127.0.0.1", quick_simnode.port)
    percentages: list[float] = []
    task = node.create_task(images, name="field-A", progress_callback=percentages.append)
    assert percentages[-1] == 100.0
    assert sorted(set(percentages)) == [50.0, 100.0]
    seen: list[TaskInfo] = []
    task.wait_for_completion(status_callback=seen.append, interval=0.05)
    assert seen[-1].status is TaskStatus.COMPLETED
    assert seen[-1].name == "field-A"

    progress: list[tuple[int, int | None]] = []
    archive = task.download_archive(
        tmp_path / "out", progress_callback=lambda done, total: progress.append((done, total))
    )
    assert archive == tmp_path / "out" / "all.zip"
    assert archive.read_bytes() == SAMPLE_ARCHIVE.read_bytes()
    assert os.listdir(tmp_path / "out") == ["all.zip"]
    assert progress[-1] == (SAMPLE_ARCHIVE.stat().st_size, SAMPLE_ARCHIVE.stat().st_size)

    zipped = task.download_zip(str(tmp_path / "zip"))
    assert zipped == str(tmp_path / "zip" / "all.zip")

    assets = task.download_assets(str(tmp_path / "assets"))
    assert assets == str(tmp_path / "assets")
    with zipfile.ZipFile(SAMPLE_ARCHIVE) as sample:
        expected = {name.rstrip("/") for name in sample.namelist()}
    extracted = {
        path.relative_to(tmp_path / "assets").as_posix()
        for path in (tmp_path / "assets").rglob("*")
    }
    assert expected <= extracted
    assert sorted(os.listdir(tmp_path)) == ["assets", "images", "out", "quick-node", "zip"]


def test_resumable_steps_keep_files_across_a_second_init(node: Node, images: list[Path]) -> None:
    task_uuid = str(uuid.uuid4())
    assert node.init_task(task_uuid, name="resumed", options={"dsm": True}) == task_uuid
    sent: list[int] = []
    node.upload_file(task_uuid, images[0], progress_callback=sent.append)
    assert sent[-1] == images[0].stat().st_size
    assert node.task_exists(task_uuid) is False  # not committed yet
    assert node.init_task(task_uuid, name="resumed", options={"dsm": True}) == task_uuid
    node.upload_file(task_uuid, images[1], upload_name="renamed.jpg")
    task = node.commit_task(task_uuid)

    assert isinstance(task, Task)
    assert task.uuid == task_uuid
    assert task.info().images_count == 2
    assert node.task_exists(task_uuid) is True
    assert node.task_exists(str(uuid.uuid4())) is False
    assert node.list_tasks() == [task_uuid]
    with pytest.raises(NodeResponseError, match=f"^Invalid set-uuid: {task_uuid}$"):
        node.init_task(task_uuid)
    with pytest.raises(TaskNotFoundError, match=r"^Invalid uuid \(not found\)$"):
        node.commit_task(task_uuid)


def test_task_control_answers_success(node: Node, images: list[Path]) -> None:
    task = node.create_task(images)
    assert task.cancel() is True
    assert task.info().status is TaskStatus.CANCELED
    with pytest.raises(TaskFailedError, match="CANCELED"):
        task.wait_for_completion(interval=0.05)
    assert task.restart({"dsm": False}) is True
    info = task.info()
    assert info.status is TaskStatus.RUNNING
    assert {"name": "dsm", "value": False} in info.options
    assert task.remove() is True
    assert node.task_exists(task.uuid) is False


def test_failed_task_raises_task_failed_error(tmp_path: Path, images: list[Path]) -> None:
    with SimulatedNode(tmp_path / "failing", processing_seconds=0.1, fail_tasks=True) as sim:
        task = Node("127.0.0.1", sim.port).create_task(images)
        with pytest.raises(TaskFailedError, match=f"^Task {task.uuid} ended FAILED"):
            task.wait_for_completion(interval=0.05)


def test_dropped_uploads_are_retried_without_duplicates(tmp_path: Path, images: list[Path]) -> None:
    with SimulatedNode(tmp_path / "dropping", processing_seconds=60, drop_uploads=True) as sim:
        node = Node("127.0.0.1", sim.port)
        task = node.create_task(images * 3, max_retries=20, retry_timeout=0)
        uploads = [seen for seen in sim.requests_seen() if seen[1].startswith("/task/new/upload")]
        assert task.info().images_count == 6
        assert len(uploads) > 6  # some were dropped and sent again


def test_no_retry_from_the_node_stops_at_the_first_attempt(
    node: Node, simnode: SimulatedNode, images: list[Path]
) -> None:
    body = json.dumps({"error": "Need at least 1 file.", "noRetry": True}).encode()
    simnode.inject(
        "POST", "/task/new/upload", status=200, body=body, content_type="application/json"
    )
    with pytest.raises(NodeResponseError, match=r"^Need at least 1 file\.$") as caught:
        node.create_task(images[:1], retry_timeout=0)
    assert caught.value.no_retry is True
    uploads = [seen for seen in simnode.requests_seen() if "upload" in seen[1]]
    assert len(uploads) == 1
    commits = [seen for seen in simnode.requests_seen() if "commit" in seen[1]]
    assert commits == []


def test_missing_file_fails_before_anything_is_sent(
    node: Node, simnode: SimulatedNode, images: list[Path], tmp_path: Path
) -> None:
    with pytest.raises(FileNotFoundError, match=r"nope.jpg"):
        node.create_task([*images, tmp_path / "nope.jpg"])
    with pytest.raises(IsADirectoryError):
        node.create_task([*images, tmp_path])
    with pytest.raises(NodeResponseError, match=r"^Not enough images$"):
        node.create_task([])
    assert simnode.requests_seen() == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file_fails_before_anything_is_sent(
    node: Node, simnode: SimulatedNode, images: list[Path]
) -> None:
    images[1].chmod(0)
    with pytest.raises(PermissionError):
        node.create_task(images)
    assert simnode.requests_seen() == []


def test_unknown_task_raises_task_not_found(node: Node) -> None:
    unknown = str(uuid.uuid4())
    task = node.get_task(unknown)
    with pytest.raises(TaskNotFoundError, match=f"^{unknown} not found$"):
        task.info()
    with pytest.raises(TaskNotFoundError):
        task.remove()
    with pytest.raises(TaskNotFoundError, match=r"^Invalid uuid \(not found\)$"):
        node.upload_file(unknown, Path(__file__))


def test_download_before_completion_is_refused(
    node: Node, images: list[Path], tmp_path: Path
) -> None:
    task = node.create_task(images)
    with pytest.raises(NodeResponseError, match=r"^Asset not ready$"):
        task.download_archive(tmp_path / "early")
    assert os.listdir(tmp_path / "early") == []
    with pytest.raises(NodeResponseError, match=r"task status is TaskStatus.RUNNING"):
        task.download_zip(tmp_path / "early")


@pytest.mark.parametrize(
    ("path", "body", "call"),
    [
        ("/info", b"[1, 2]", lambda node: node.info()),
        ("/options", b'[{"name": "x"}]', lambda node: node.options()),
        ("/task/list", b'{"tasks": []}', lambda node: node.list_tasks()),
        ("/task/new/init", b'{"id": 1}', lambda node: node.init_task(str(uuid.uuid4()))),
        ("/task/", b'{"uuid": "x"}', lambda node: node.get_task("x").info()),
        ("/task/", b'{"lines": 1}', lambda node: node.get_task("x").output()),
    ],
)
def test_malformed_answers_raise_node_server_error(
    node: Node, simnode: SimulatedNode, path: str, body: bytes, call: object
) -> None:
    method = "POST" if path == "/task/new/init" else "GET"
    simnode.inject(method, path, status=200, body=body, content_type="application/json")
    with pytest.raises(NodeServerError, match=r"^Malformed answer for "):
        call(node)  # type: ignore[operator]


def test_init_answering_another_uuid_is_refused(node: Node, simnode: SimulatedNode) -> None:
    other = str(uuid.uuid4())
    body = json.dumps({"uuid": other}).encode()
    simnode.inject("POST", "/task/new/init", status=200, body=body, content_type="application/json")
    with pytest.raises(NodeServerError, match=f"answered UUID '{other}'"):
        node.init_task(str(uuid.uuid4()))


def test_url_and_from_url_keep_the_seed_forms() -> None:
    node = Node.from_url("http://example.org:3000/?token=abc", timeout=7)
    assert (node.host, node.port, node.token, node.timeout) == ("example.org", 3000, "abc", 7)
    assert node.url("/info") == "http://example.org:3000/info?token=abc"
    assert Node("h", 443).url("/x", {"a": 1}) == "https://h/x?a=1"
    assert Node.from_url("https://h:8443").url("/x") == "https://h:8443/x"
    assert Node.from_url("http://h").port == 80


def test_upload_threads_leave_no_open_connections(simnode: SimulatedNode, tmp_path: Path) -> None:
    folder = tmp_path / "many"
    folder.mkdir()
    paths = []
    for index in range(8):
        path = folder / f"IMG_{index}.JPG"
        path.write_bytes(os.urandom(2000))
        paths.append(path)
    node = Node("127.0.0.1", simnode.port)
    node.create_task(paths, parallel_uploads=4)

    def client_connections() -> int:
        return sum(
            1
            for connection in psutil.Process().net_connections(kind="tcp")
            if connection.raddr
            and connection.raddr.port == simnode.port
            and connection.status == psutil.CONN_ESTABLISHED
        )

    assert client_connections() == 1  # the calling thread's pooled keep-alive connection
    node.close()
    assert client_connections() == 0

    # a caller's own short-lived threads: their sockets go once they have ended
    workers = [threading.Thread(target=node.info) for _ in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert client_connections() == 3
    node.close_finished_threads()
    assert client_connections() == 0
