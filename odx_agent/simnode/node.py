"""The simulated node as an object tests start and stop, and as a blocking command."""

from __future__ import annotations

import signal
import tempfile
import threading
import time
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from types import FrameType, TracebackType

from odx_agent.simnode.registry import TaskRegistry
from odx_agent.simnode.server import InjectedAnswer, NodeApp, NodeServer
from odx_agent.simnode.webhook import deliver_in_background

TICK_SECONDS = 0.05


class SimulatedNode:
    """A NodeODX-compatible HTTP node answering like NodeODX 2.3.1 in its test mode.

    Given a data folder, it keeps its tasks there across stop and start; nothing is
    processed, a task completes (or fails, with ``fail_tasks``) after
    ``processing_seconds`` and serves a canned ``all.zip``.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str = "",
        processing_seconds: float = 3.0,
        fail_tasks: bool = False,
        drop_uploads: bool = False,
        seed: int = 0,
        max_images: int | None = None,
        max_parallel_tasks: int = 1,
        archive: Path | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._data_dir = Path(data_dir)
        self._host = host
        self._requested_port = port
        self._token = token
        self._processing_seconds = processing_seconds
        self._fail_tasks = fail_tasks
        self._drop_uploads = drop_uploads
        self._seed = seed
        self._max_images = max_images
        self._max_parallel_tasks = max_parallel_tasks
        self._archive = archive
        self._clock = clock
        self._server: NodeServer | None = None
        self._app: NodeApp | None = None
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()

    def __repr__(self) -> str:
        # The token stays out of every printed form of the node.
        return f"SimulatedNode(url={self.url if self._server else None!r})"

    @property
    def port(self) -> int:
        """Return the bound port. Raise RuntimeError before start()."""
        if self._server is None:
            raise RuntimeError("the simulated node is not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """Return the node's base URL, without the token."""
        return f"http://{self._host}:{self.port}"

    def start(self) -> None:
        """Load the saved tasks, bind the port and serve in background threads."""
        if self._server is not None:
            raise RuntimeError("the simulated node is already started")
        registry = TaskRegistry(
            self._data_dir,
            processing_seconds=self._processing_seconds,
            fail_tasks=self._fail_tasks,
            max_images=self._max_images,
            max_parallel_tasks=self._max_parallel_tasks,
            clock=self._clock,
        )
        self._app = NodeApp(
            registry=registry,
            token=self._token,
            archive=self._archive or _packaged_archive(),
            drop_uploads=self._drop_uploads,
            seed=self._seed,
            max_images=self._max_images,
            max_parallel_tasks=self._max_parallel_tasks,
        )
        self._server = NodeServer((self._host, self._requested_port), self._app)
        self._stop.clear()
        self._threads = [
            threading.Thread(target=self._server.serve_forever, args=(0.1,), daemon=True),
            threading.Thread(target=self._process, args=(registry,), daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """Stop serving and processing and close the socket; the tasks stay on disk."""
        server = self._server
        if server is None:
            return
        self._stop.set()
        server.shutdown()
        server.close_connections()
        server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._server = None

    def __enter__(self) -> SimulatedNode:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def inject(
        self,
        method: str,
        path_prefix: str,
        *,
        status: int,
        body: bytes,
        content_type: str = "text/html",
        count: int = 1,
    ) -> None:
        """Given a method and path prefix, make the next ``count`` matching requests get
        this raw answer instead of the real one (for hostile-answer tests)."""
        app = self._require_app()
        with app.lock:
            app.injected.append(
                InjectedAnswer(method.upper(), path_prefix, status, body, content_type, count)
            )

    def requests_seen(self) -> list[tuple[str, str]]:
        """Return every (method, path without query) this node has handled, in order."""
        app = self._require_app()
        with app.lock:
            return list(app.seen)

    def _require_app(self) -> NodeApp:
        if self._app is None:
            raise RuntimeError("the simulated node was never started")
        return self._app

    def _process(self, registry: TaskRegistry) -> None:
        # Advancing regularly ends tasks nobody polls, so webhooks fire on time.
        while not self._stop.wait(TICK_SECONDS):
            for task in registry.take_finished():
                if task.webhook:
                    deliver_in_background(task.webhook, {**task.info(), "images": task.images})


def _packaged_archive() -> Path:
    archive = resources.files("odx_agent.simnode").joinpath("data/sample-all.zip")
    return Path(str(archive))


def run_simulated_node(
    *,
    host: str,
    port: int,
    token: str,
    processing_seconds: float,
    fail_tasks: bool,
    drop_uploads: bool,
    seed: int,
    data_dir: Path | None,
    max_images: int | None = None,
    max_parallel_tasks: int = 1,
) -> int:
    """Given the node settings, serve until SIGINT or SIGTERM and return 0. Print one line
    ``simulated NodeODX node listening on <url>`` once ready. A None data folder means a
    temporary one, deleted at the end."""
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {
        signum: signal.signal(signum, request_stop) for signum in (signal.SIGINT, signal.SIGTERM)
    }
    with tempfile.TemporaryDirectory(prefix="simnode-") as temporary:
        node = SimulatedNode(
            data_dir if data_dir is not None else Path(temporary),
            host=host,
            port=port,
            token=token,
            processing_seconds=processing_seconds,
            fail_tasks=fail_tasks,
            drop_uploads=drop_uploads,
            seed=seed,
            max_images=max_images,
            max_parallel_tasks=max_parallel_tasks,
        )
        try:
            node.start()
            print(f"simulated NodeODX node listening on {node.url}", flush=True)
            while not stop.wait(1.0):
                pass
        finally:
            node.stop()
            for signum, handler in previous.items():
                signal.signal(signum, handler)
    return 0
