"""The configured NodeODX nodes: one client each, their health, and which gets new work."""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

import structlog

from odx_agent.agent.errors import NodeNotConfigured
from odx_agent.config import NodeConfig
from odx_agent.metrics import AgentMetrics
from odx_agent.nodeodx import Node, NodeInfo, NodeOption
from odx_agent.nodeodx.exceptions import GenericError

log = structlog.get_logger(__name__)

OPTIONS_CACHE_SECONDS = 300.0


@dataclass
class NodeHandle:
    name: str
    client: Node
    max_active_tasks: int
    up: bool | None = None
    queue: int = 0
    max_images: int | None = None
    checked_at: float = 0.0
    source: tuple[str, str] = field(default=("", ""), repr=False)  # base URL, token
    _options: tuple[float, list[NodeOption]] | None = field(default=None, repr=False)


def make_client(base_url: str, token: str, *, timeout: float = 30.0) -> Node:
    """Given a node's URL (without token) and its token, return a client for it."""
    parts = urlparse(base_url)
    scheme = (parts.scheme or "http").lower()
    port = parts.port or (443 if scheme == "https" else 80)
    return Node(parts.hostname or "", port, token, timeout, scheme=scheme)


def _handle(node: NodeConfig) -> NodeHandle:
    client = make_client(node.base_url, node.token)
    return NodeHandle(node.name, client, node.max_active_tasks, source=(node.base_url, node.token))


class NodePool:
    """The nodes of the configuration, their state, and the choice of a node for a drop.

    Nodes removed by a reload while drops use them stay reachable under their name for
    those drops ("retired"): they are neither picked for new drops nor probed."""

    def __init__(
        self,
        nodes: Sequence[NodeConfig],
        *,
        metrics: AgentMetrics,
        clock: Callable[[], float],
    ) -> None:
        self._handles = {node.name: _handle(node) for node in nodes}
        self._retired: dict[str, NodeHandle] = {}
        self._metrics = metrics
        self._clock = clock
        self._lock = threading.Lock()

    def reconfigured(self, nodes: Sequence[NodeConfig], in_use: Collection[str]) -> NodePool:
        """Return the pool for a reloaded configuration. A node whose URL and token are
        unchanged keeps its client (and open connections), health and cached options; a
        changed one (a rotated token, a new address) gets a new client. Nodes gone from the
        configuration are retired while ``in_use`` names them, forgotten otherwise."""
        pool = NodePool((), metrics=self._metrics, clock=self._clock)
        known = {**self._retired, **self._handles}
        for node in nodes:
            handle = known.get(node.name)
            if handle is not None and handle.source == (node.base_url, node.token):
                handle.max_active_tasks = node.max_active_tasks
            else:
                handle = _handle(node)
            pool._handles[node.name] = handle
        pool._retired = {
            name: handle
            for name, handle in known.items()
            if name not in pool._handles and name in in_use
        }
        return pool

    @property
    def names(self) -> list[str]:
        """Return the names of the configured nodes (not the retired ones)."""
        return list(self._handles)

    @property
    def retired(self) -> list[str]:
        """Return the names of nodes removed from the configuration that drops still use."""
        return list(self._retired)

    def handle(self, name: str) -> NodeHandle:
        """Return the node called ``name``, configured or retired. Raise NodeNotConfigured
        when there is no such node."""
        found = self._handles.get(name) or self._retired.get(name)
        if found is None:
            raise NodeNotConfigured(name)
        return found

    def client(self, name: str) -> Node:
        return self.handle(name).client

    def probe(self, name: str) -> NodeInfo | None:
        """Ask a node for its info; record whether it is up and how busy it is."""
        handle = self.handle(name)
        try:
            info = handle.client.info()
        except GenericError as error:
            self.mark(name, up=False, reason=str(error))
            return None
        with self._lock:
            handle.queue = int(info.task_queue_count or 0)
            handle.max_images = info.max_images
            handle.checked_at = self._clock()
        self._metrics.set_node_queue(name, handle.queue)
        self.mark(name, up=True)
        return info

    def mark(self, name: str, *, up: bool, reason: str = "") -> None:
        """Record the outcome of talking to a node; log when it goes down or comes back."""
        handle = self._handles.get(name) or self._retired.get(name)
        if handle is None:
            return
        with self._lock:
            was, handle.up = handle.up, up
        self._metrics.set_node_up(name, up)
        if was is not False and not up:
            log.warning("node unreachable, waiting for it", node=name, reason=reason)
        elif was is False and up:
            log.info("node reachable again", node=name)

    def options(self, name: str) -> list[NodeOption]:
        """Return the node's options, asking it at most every few minutes."""
        handle = self.handle(name)
        now = self._clock()
        cached = handle._options
        if cached is not None and now - cached[0] < OPTIONS_CACHE_SECONDS:
            return cached[1]
        options = handle.client.options()
        handle._options = (now, options)
        return options

    def pick(self, active: Mapping[str, int]) -> str | None:
        """Given how many tasks this agent keeps on each node, return the node that should
        take the next drop: up (or not known to be down), with room, least busy."""
        candidates: list[tuple[int, int, str]] = []
        for name, handle in self._handles.items():
            busy = active.get(name, 0)
            if handle.up is False or busy >= handle.max_active_tasks:
                continue
            candidates.append((busy, handle.queue, name))
        return min(candidates)[2] if candidates else None

    def describe(self) -> dict[str, Any]:
        return {name: handle.up for name, handle in self._handles.items()}
