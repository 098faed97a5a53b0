"""The agent as a real process for fault tests: write its config, start it, wait until it
serves, kill it (SIGKILL) or stop it (SIGTERM), start it again, and read what it knows.

The agent runs as ``sys.executable -m odx_agent run -c FILE``; its output goes to one log
file that every restart appends to. Readiness is the ``odx-agent running`` log line of the
current run plus ``/healthz`` answering on the metrics port. Every wait has a deadline.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from odx_agent.store import Drop, Store

READY_LINE = "odx-agent running"
T = TypeVar("T")


def free_port() -> int:
    """Return a loopback port that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_for(condition: Callable[[], T], *, timeout: float, what: str, interval: float = 0.05) -> T:
    """Given a condition, return its first truthy value. Raise AssertionError naming
    ``what`` when it stays falsy for ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


@dataclass
class AgentLayout:
    """The folders and files of one agent under test, all below ``base``."""

    base: Path
    watch_names: Sequence[str] = ("w",)
    metrics_port: int = field(default_factory=free_port)

    def __post_init__(self) -> None:
        self.base.mkdir(parents=True, exist_ok=True)
        for name in self.watch_names:
            self.watch(name).mkdir(parents=True, exist_ok=True)

    @property
    def config_path(self) -> Path:
        return self.base / "agent.yaml"

    @property
    def state_file(self) -> Path:
        return self.base / "state.sqlite"

    @property
    def log_path(self) -> Path:
        return self.base / "agent.log"

    def watch(self, name: str = "w") -> Path:
        return self.base / "ingest" / name

    def output(self, name: str = "w") -> Path:
        return self.base / "results" / name

    def write_config(
        self,
        node_url: str,
        *,
        poll_interval_seconds: float = 0.3,
        rescan_seconds: float = 1.0,
        settle_seconds: float = 0.3,
        max_active_tasks: int = 4,
        max_parallel_uploads: int = 2,
        uploads_per_drop: int = 4,
        watch_mode: str = "auto",
        extra: dict[str, Any] | None = None,
    ) -> Path:
        """Given the node's URL and the timings, write the agent's YAML config; return it."""
        document: dict[str, Any] = {
            "state_file": str(self.state_file),
            "nodes": [{"name": "sim", "url": node_url, "max_active_tasks": max_active_tasks}],
            "poll_interval_seconds": poll_interval_seconds,
            "rescan_seconds": rescan_seconds,
            "max_parallel_uploads": max_parallel_uploads,
            "uploads_per_drop": uploads_per_drop,
            "metrics": {"listen": f"127.0.0.1:{self.metrics_port}"},
            "log": {"level": "INFO", "format": "json"},
            "watches": [
                {
                    "name": name,
                    "path": str(self.watch(name)),
                    "output": str(self.output(name)),
                    "mode": watch_mode,
                    "ready": {"marker": ".ready", "settle_seconds": settle_seconds},
                }
                for name in self.watch_names
            ],
        }
        document.update(extra or {})
        self.config_path.write_text(yaml.safe_dump(document, sort_keys=False))
        return self.config_path


class AgentProcess:
    """One odx-agent daemon as a subprocess, started, killed and restarted by a test."""

    def __init__(self, layout: AgentLayout, *, wrapper: Sequence[str] = ()) -> None:
        self.layout = layout
        self.wrapper = list(wrapper)
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def pid(self) -> int:
        assert self.process is not None, "the agent is not started"
        return self.process.pid

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, *, timeout: float = 30.0) -> None:
        """Start the agent and return once it serves. Raise AssertionError (with the log's
        tail) when it exits or does not get ready within ``timeout`` seconds."""
        assert not self.running, "the agent is already running"
        before = self._ready_lines()
        command = [sys.executable, "-m", "odx_agent", "run", "-c", str(self.layout.config_path)]
        with open(self.layout.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [*self.wrapper, *command],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        self.starts += 1
        deadline = time.monotonic() + timeout
        while not (self._ready_lines() > before and self.healthz() is not None):
            if self.process.poll() is not None:
                raise AssertionError(
                    f"the agent exited with {self.process.returncode}:\n{self.log_tail()}"
                )
            if time.monotonic() >= deadline:
                self.kill()
                raise AssertionError(f"the agent did not get ready:\n{self.log_tail()}")
            time.sleep(0.05)

    def kill(self) -> None:
        """Kill the agent with SIGKILL (as a crash or power cut would) and reap it."""
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self, *, timeout: float = 20.0) -> int:
        """Stop the agent with SIGTERM; return its exit code. Kill it after ``timeout``."""
        assert self.process is not None, "the agent is not started"
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise AssertionError(
                    f"the agent did not stop on SIGTERM:\n{self.log_tail()}"
                ) from None
        return self.process.returncode

    def restart(self, *, timeout: float = 30.0) -> None:
        """Kill the agent if it runs, then start it again."""
        self.kill()
        self.start(timeout=timeout)

    def healthz(self) -> int | None:
        """Return the status code of ``/healthz``, or None when nothing answers."""
        try:
            with urllib.request.urlopen(self._url("/healthz"), timeout=2) as answer:
                return int(answer.status)
        except urllib.error.HTTPError as error:
            return int(error.code)
        except OSError:
            return None

    def metrics_text(self) -> str:
        """Return the agent's ``/metrics`` page."""
        with urllib.request.urlopen(self._url("/metrics"), timeout=5) as answer:
            return str(answer.read().decode())

    def metric(self, name: str, labels: dict[str, str] | None = None) -> float | None:
        """Given a sample name and labels, return its value on ``/metrics`` (None: absent)."""
        from prometheus_client.parser import text_string_to_metric_families

        for family in text_string_to_metric_families(self.metrics_text()):
            for sample in family.samples:
                if sample.name == name and all(
                    sample.labels.get(key) == value for key, value in (labels or {}).items()
                ):
                    return float(sample.value)
        return None

    def drops(self) -> list[Drop]:
        """Return every drop the state file knows, oldest first."""
        if not self.layout.state_file.exists():
            return []
        store = Store.open(self.layout.state_file)
        try:
            return sorted(store.all(), key=lambda drop: drop.id)
        finally:
            store.close()

    def status_json(self) -> list[dict[str, Any]]:
        """Return ``odx-agent status --json`` as the command prints it."""
        import json

        config = str(self.layout.config_path)
        done = subprocess.run(
            [sys.executable, "-m", "odx_agent", "status", "--json", "-c", config],
            capture_output=True,
            timeout=30,
            check=True,
        )
        rows: list[dict[str, Any]] = json.loads(done.stdout)
        return rows

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.layout.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def _ready_lines(self) -> int:
        try:
            return self.layout.log_path.read_text(errors="replace").count(READY_LINE)
        except FileNotFoundError:
            return 0

    def _url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.layout.metrics_port}{path}"


class NodeProcess:
    """A simulated node as a subprocess (``odx-agent simulate-node``) with a fixed port
    and data folder, so a test can stop it and start it again where it was."""

    def __init__(self, data_dir: Path, *, port: int | None = None, **options: Any) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.options = options
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir.parent / f"{data_dir.name}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, *, timeout: float = 20.0) -> None:
        """Start the node and return once ``/info`` answers."""
        command = [sys.executable, "-m", "odx_agent", "simulate-node", "--port", str(self.port)]
        command += ["--data-dir", str(self.data_dir)]
        for key, value in self.options.items():
            flag = "--" + key.replace("_", "-")
            if value is True:
                command.append(flag)
            elif value not in (False, None):
                command += [flag, str(value)]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while not self.answers():
            if self.process.poll() is not None or time.monotonic() >= deadline:
                self.stop()
                raise AssertionError(f"the simulated node did not start: {self.log_path}")
            time.sleep(0.05)

    def answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/info", timeout=2) as answer:
                return bool(answer.status == 200)
        except OSError:
            return False

    def stop(self) -> None:
        """Stop the node (SIGTERM, then SIGKILL after 10 s) and reap it."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


def make_drop(
    folder: Path,
    *,
    images: int = 3,
    size: int = 4096,
    seed: int = 0,
    marker: str | None = ".ready",
    names: Sequence[str] | None = None,
) -> dict[str, bytes]:
    """Write a drop of random-byte ``.JPG`` images (the simulated node does not decode
    them), then its marker; return each image's name and content."""
    import random

    generator = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    written: dict[str, bytes] = {}
    for index, name in enumerate(names or [f"IMG_{n + 1:04d}.JPG" for n in range(images)]):
        data = generator.randbytes(size) + index.to_bytes(4, "big")
        (folder / name).write_bytes(data)
        written[name] = data
    if marker is not None:
        (folder / marker).write_text("")
    return written
