"""Helpers for tests that run the whole daemon against the simulated node: configs, drops,
free ports, waits with deadlines, /metrics scrapes and a loopback webhook receiver."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import yaml
from prometheus_client.parser import text_string_to_metric_families

from odx_agent.commands.demo import make_sample_drop

AGENT = [sys.executable, "-m", "odx_agent"]


def free_port() -> int:
    """Return a loopback TCP port that was free a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(condition: Callable[[], Any], *, timeout: float = 30.0, interval: float = 0.05) -> Any:
    """Return the first truthy value of ``condition()``; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)


def watch(name: str, *, settle: float = 0.0, **extra: Any) -> dict[str, Any]:
    """Return a watch entry for ``ingest/<name>`` -> ``results/<name>``."""
    return {
        "name": name,
        "path": f"ingest/{name}",
        "output": f"results/{name}",
        "ready": {"marker": ".ready", "settle_seconds": settle, "min_images": 2},
        **extra,
    }


def write_config(
    base: Path, nodes: list[dict[str, Any]], watches: list[dict[str, Any]], **settings: Any
) -> Path:
    """Write ``base/agent.yaml`` (creating the watch folders) and return its path."""
    for entry in watches:
        (base / entry["path"]).mkdir(parents=True, exist_ok=True)
    document: dict[str, Any] = {
        "state_file": "state.sqlite",
        "nodes": nodes,
        "poll_interval_seconds": 0.2,
        "rescan_seconds": 0.5,
        "metrics": {"listen": f"127.0.0.1:{free_port()}"},
        "watches": watches,
        **settings,
    }
    path = base / "agent.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def add_drop(base: Path, watch_name: str, drop: str, *, images: int = 3) -> Path:
    """Write a ready drop of ``images`` small JPEGs into a watch; return its folder."""
    folder = base / "ingest" / watch_name / drop
    make_sample_drop(folder, images=images)
    return folder


def http_get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    """GET ``url`` and return (status, body), also for 4xx and 5xx answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def http_post(url: str, body: bytes = b"{}", timeout: float = 5.0) -> int:
    """POST ``body`` to ``url`` and return the status."""
    request = urllib.request.Request(url, data=body, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            answer.read()
            return int(answer.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def scrape(listen: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Scrape ``http://<listen>/metrics`` and return {(sample name, sorted labels): value}."""
    status, body = http_get(f"http://{listen}/metrics")
    assert status == 200
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def sample(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float | None:
    """Return one value of a scrape, or None when the series is absent."""
    return samples.get((name, tuple(sorted(labels.items()))))


class Receiver:
    """A loopback HTTP server that records every POST and answers ``status`` (settable)."""

    def __init__(self) -> None:
        self.status = 200
        self.calls: list[tuple[int, str, bytes]] = []
        self._lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            owners: ClassVar[list[Receiver]] = [owner]

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with owner._lock:
                    status = owner.status
                    owner.calls.append((status, self.path, body))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.1,))
        self._thread.daemon = True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/hook"

    def delivered(self) -> list[dict[str, Any]]:
        """Return the JSON bodies of the POSTs answered 2xx, in order."""
        with self._lock:
            return [json.loads(body) for status, _, body in self.calls if status < 300]

    def attempts(self) -> int:
        with self._lock:
            return len(self.calls)

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


@contextmanager
def agent_process(
    config: Path, stderr: Path, *, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``odx-agent run -c config`` with stderr into a file; stop it (TERM, then KILL)
    when the block ends."""
    with open(stderr, "wb") as errors:
        process = subprocess.Popen(
            [*AGENT, "run", "-c", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=errors,
            env={**os.environ, **(env or {})},
            cwd=config.parent,
        )
        try:
            yield process
        finally:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(5)
