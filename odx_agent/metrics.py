"""Prometheus metrics of the agent, on a registry of their own.

Every label takes its values from a fixed set: watches and nodes come from the
constructor (or a reload), states, results, stages and error kinds are fixed here. A value
outside its set is counted under ``OTHER`` instead of creating a new series, so the number
of series stays bounded however long the agent runs and whatever the store holds.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from odx_agent.httpservice import parse_listen
from odx_agent.metrics_http import Heartbeat, MetricsServer
from odx_agent.states import FINAL_STATES, DropState

__all__ = [
    "DROP_STATES",
    "ERROR_KINDS",
    "FINISH_RESULTS",
    "OTHER",
    "STAGES",
    "AgentMetrics",
    "Heartbeat",
    "MetricsServer",
    "parse_listen",
]

PREFIX = "odx_agent"
OTHER = "_other"

DROP_STATES: tuple[str, ...] = tuple(state.value for state in DropState)
FINISH_RESULTS: tuple[str, ...] = tuple(state.value for state in DropState if state in FINAL_STATES)
STAGES: tuple[str, ...] = ("wait", "queue", "upload", "processing", "download")
ERROR_KINDS: tuple[str, ...] = (
    "connection",  # the node could not be reached or timed out
    "server",  # the node answered 5xx or garbage
    "response",  # the node refused an operation
    "auth",  # the node refused the token
    "download",  # a result download arrived short or corrupt
    "archive",  # a result archive was unsafe or unreadable
    "disk_full",  # no room left for a download or extraction
    "config",  # a reload found an invalid configuration, or a drop's node is not in it
    "input",  # a drop could not be used as given
    "notify",  # a notification could not be delivered
    "internal",  # anything else: a bug or an unexpected exception
)

# Stage durations run from seconds (an upload on a LAN) to days (a big task queued behind
# others); the node deletes results after 48 h, so the buckets reach past that.
DURATION_BUCKETS: tuple[float, ...] = (
    1,
    5,
    15,
    30,
    60,
    120,
    300,
    600,
    1800,
    3600,
    2 * 3600,
    4 * 3600,
    8 * 3600,
    12 * 3600,
    24 * 3600,
    48 * 3600,
    96 * 3600,
    7 * 24 * 3600,
)

DropCountsSource = Callable[[], Mapping[tuple[str, str], int]]
OldestSource = Callable[[], tuple[float | None, float | None]]


def _bounded(value: str, allowed: Iterable[str]) -> str:
    """Given a label value and its allowed set, return the value, or ``OTHER`` if outside."""
    return value if value in allowed else OTHER


class _ScrapeTimeCollector(Collector):
    """Collect the gauges whose values are read from the agent at each scrape."""

    def __init__(self, owner: AgentMetrics) -> None:
        self._owner = owner

    def describe(self) -> Iterable[Metric]:
        return self._families()

    def collect(self) -> Iterable[Metric]:
        return self._families(fill=True)

    def _families(self, *, fill: bool = False) -> list[Metric]:
        drops = GaugeMetricFamily(
            f"{PREFIX}_drops", "Drops in each state now.", labels=["watch", "state"]
        )
        active = GaugeMetricFamily(
            f"{PREFIX}_oldest_active_drop_seconds",
            "Age of the oldest drop not yet in a final state (0 when none).",
        )
        undownloaded = GaugeMetricFamily(
            f"{PREFIX}_oldest_undownloaded_result_seconds",
            "Age of the oldest finished node task whose results are not downloaded yet "
            "(0 when none).",
        )
        if fill:
            for (watch, state), count in sorted(self._owner.drop_counts().items()):
                drops.add_metric([watch, state], count)
            oldest_active, oldest_undownloaded = self._owner.oldest_ages()
            active.add_metric([], oldest_active)
            undownloaded.add_metric([], oldest_undownloaded)
        return [drops, active, undownloaded]


class AgentMetrics:
    """Hold every metric of the agent on its own ``registry``.

    All methods are thread-safe and never raise on an unknown label value: it is counted
    under ``OTHER``. The two sources are called on the HTTP server thread at each scrape,
    so they must be thread-safe and quick.
    """

    def __init__(self, *, watches: Sequence[str], nodes: Sequence[str], version: str) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self._lock = threading.Lock()
        self._last_success_at: dict[str, float] = {}
        self._watches: tuple[str, ...] = ()
        self._nodes: tuple[str, ...] = ()
        self._drop_counts_source: DropCountsSource | None = None
        self._oldest_source: OldestSource | None = None
        registry = self.registry

        self._finished = Counter(
            f"{PREFIX}_drops_finished",
            "Drops that reached a final state, by result.",
            ["watch", "result"],
            registry=registry,
        )
        self._upload_bytes = Counter(
            f"{PREFIX}_upload_bytes", "Bytes of images sent to nodes.", registry=registry
        )
        self._download_bytes = Counter(
            f"{PREFIX}_download_bytes", "Bytes of results fetched from nodes.", registry=registry
        )
        self._stage_duration = Histogram(
            f"{PREFIX}_stage_duration_seconds",
            "Time a drop spent in each stage.",
            ["stage"],
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self._node_up = Gauge(
            f"{PREFIX}_node_up",
            "1 when the node answered its last probe, 0 otherwise or before the first.",
            ["node"],
            registry=registry,
        )
        self._node_queue = Gauge(
            f"{PREFIX}_node_queue_tasks",
            "Tasks queued or running on the node at its last probe.",
            ["node"],
            registry=registry,
        )
        self._retries = Counter(
            f"{PREFIX}_retries", "Operations tried again, by stage.", ["stage"], registry=registry
        )
        self._errors = Counter(
            f"{PREFIX}_errors", "Errors met, by kind.", ["kind"], registry=registry
        )
        self._last_success = Gauge(
            f"{PREFIX}_last_success_timestamp_seconds",
            "Unix time at which a drop of the watch last completed (0 before the first).",
            ["watch"],
            registry=registry,
        )
        build_info = Gauge(
            f"{PREFIX}_build_info",
            "Always 1; the version is the label.",
            ["version"],
            registry=registry,
        )
        build_info.labels(version=version).set(1)

        for stage in (*STAGES, OTHER):
            self._stage_duration.labels(stage=stage)
            self._retries.labels(stage=stage)
        for kind in ERROR_KINDS:
            self._errors.labels(kind=kind)
        registry.register(_ScrapeTimeCollector(self))
        self.reconfigure(watches, nodes)

    @property
    def watches(self) -> tuple[str, ...]:
        """Return the watch names currently allowed as label values."""
        return self._watches

    @property
    def nodes(self) -> tuple[str, ...]:
        """Return the node names currently allowed as label values."""
        return self._nodes

    def reconfigure(self, watches: Sequence[str], nodes: Sequence[str]) -> None:
        """Given the watch and node names after a reload, add their series and drop the
        series of names that are gone (their counters restart if they come back)."""
        new_watches = tuple(dict.fromkeys(watches))
        new_nodes = tuple(dict.fromkeys(nodes))
        with self._lock:
            for watch in set(self._watches) - set(new_watches):
                for result in (*FINISH_RESULTS, OTHER):
                    self._finished.remove(watch, result)
                self._last_success.remove(watch)
                self._last_success_at.pop(watch, None)
            for node in set(self._nodes) - set(new_nodes):
                self._node_up.remove(node)
                self._node_queue.remove(node)
            self._watches, self._nodes = new_watches, new_nodes
            for watch in (*new_watches, OTHER):
                for result in (*FINISH_RESULTS, OTHER):
                    self._finished.labels(watch=watch, result=result)
            for watch in new_watches:
                self._last_success.labels(watch=watch)
            for node in new_nodes:
                self._node_up.labels(node=node)
                self._node_queue.labels(node=node)

    def set_drop_counts_source(self, source: DropCountsSource) -> None:
        """Given a function returning ``{(watch, state): count}``, read it at each scrape."""
        self._drop_counts_source = source

    def set_oldest_source(self, source: OldestSource) -> None:
        """Given a function returning ``(oldest_active_seconds, oldest_undownloaded_seconds)``
        (None when there is no such drop), read it at each scrape."""
        self._oldest_source = source

    def drop_finished(self, watch: str, result: str) -> None:
        """Count one drop of ``watch`` that ended as ``result`` (completed|failed|canceled)."""
        with self._lock:
            label_watch = _bounded(watch, self._watches)
            self._finished.labels(watch=label_watch, result=_bounded(result, FINISH_RESULTS)).inc()

    def observe_stage(self, stage: str, seconds: float) -> None:
        """Record that a drop spent ``seconds`` in ``stage`` (wait|queue|upload|processing|
        download). Negative durations, from a clock stepped back, count as 0."""
        self._stage_duration.labels(stage=_bounded(stage, STAGES)).observe(max(0.0, seconds))

    def add_upload_bytes(self, count: int) -> None:
        """Count ``count`` bytes sent to a node."""
        self._upload_bytes.inc(max(0, count))

    def add_download_bytes(self, count: int) -> None:
        """Count ``count`` bytes received from a node."""
        self._download_bytes.inc(max(0, count))

    def set_node_up(self, node: str, up: bool) -> None:
        """Record whether ``node`` answered its last probe. Unknown nodes are ignored."""
        with self._lock:
            if node in self._nodes:
                self._node_up.labels(node=node).set(1 if up else 0)

    def set_node_queue(self, node: str, tasks: int) -> None:
        """Record how many tasks ``node`` reported queued or running. Unknown nodes are
        ignored."""
        with self._lock:
            if node in self._nodes:
                self._node_queue.labels(node=node).set(tasks)

    def retry(self, stage: str) -> None:
        """Count one retry in ``stage``."""
        self._retries.labels(stage=_bounded(stage, STAGES)).inc()

    def error(self, kind: str) -> None:
        """Count one error of ``kind`` (one of ``ERROR_KINDS``; anything else is internal)."""
        self._errors.labels(kind=kind if kind in ERROR_KINDS else "internal").inc()

    def set_last_success(self, watch: str, timestamp: float) -> None:
        """Record the Unix time at which a drop of ``watch`` completed, unless a later one
        is recorded already (downloads finish in parallel, and their reports can arrive
        out of order). Unknown watches are ignored."""
        with self._lock:
            if watch in self._watches and timestamp > self._last_success_at.get(watch, 0.0):
                self._last_success_at[watch] = timestamp
                self._last_success.labels(watch=watch).set(timestamp)

    def drop_counts(self) -> dict[tuple[str, str], int]:
        """Return the count for every configured watch and every state, from the source,
        with zeros filled in and unknown watches or states summed under ``OTHER``.
        When the source fails the scrape still succeeds and an internal error is counted."""
        watches = self._watches
        counts = {(watch, state): 0 for watch in watches for state in DROP_STATES}
        source = self._drop_counts_source
        if source is None:
            return counts
        try:
            reported = dict(source())
        except Exception:  # noqa: BLE001 - a failing source must not break the scrape
            self.error("internal")
            return counts
        for (watch, state), count in reported.items():
            key = (_bounded(watch, watches), _bounded(state, DROP_STATES))
            counts[key] = counts.get(key, 0) + count
        return counts

    def oldest_ages(self) -> tuple[float, float]:
        """Return ``(oldest_active_seconds, oldest_undownloaded_seconds)`` from the source,
        0 where there is no such drop, no source, or the source failed."""
        source = self._oldest_source
        if source is None:
            return 0.0, 0.0
        try:
            active, undownloaded = source()
        except Exception:  # noqa: BLE001 - a failing source must not break the scrape
            self.error("internal")
            return 0.0, 0.0
        return max(0.0, active or 0.0), max(0.0, undownloaded or 0.0)
