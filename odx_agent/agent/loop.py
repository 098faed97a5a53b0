"""The daemon's main loop: one thread decides, worker pools do the talking.

The loop never waits on the network itself: it looks at folders, reads the state file,
hands work on drops to pools (uploads, node polls and requests, downloads) and sleeps on
an event that file events, finished jobs and signals set. Signal handlers only set flags.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from odx_agent import __version__
from odx_agent.agent import requests as operator
from odx_agent.agent.callback import (
    CallbackInbox,
    CallbackSecrets,
    CallbackServer,
    key_path,
    load_or_create_key,
)
from odx_agent.agent.detect import Detector
from odx_agent.agent.fetch import fetch
from odx_agent.agent.lifecycle import Lifecycle
from odx_agent.agent.nodes import NodePool
from odx_agent.agent.notifications import NotificationSender
from odx_agent.agent.reloading import GrowingPool, restart_only_changes
from odx_agent.agent.runtime import Runtime
from odx_agent.agent.startup import reconcile
from odx_agent.agent.submit import continue_upload, start_upload
from odx_agent.agent.track import poll
from odx_agent.agent.work import JobRunner
from odx_agent.config import AgentConfig, ConfigError, load_config
from odx_agent.logsetup import add_secret, configure_logging
from odx_agent.metrics import AgentMetrics, Heartbeat, MetricsServer
from odx_agent.sdnotify import SystemdNotifier, summary_line
from odx_agent.states import DropState
from odx_agent.store import Drop, InstanceLock, Store
from odx_agent.watch import FolderWatcher, WatchedFolder

log = structlog.get_logger(__name__)

# At rest the loop sleeps until its next duty, at most this long (events wake it at once)
IDLE_TICK_SECONDS = 5.0
MIN_SLEEP_SECONDS = 0.02
IDLE_PROBE_SECONDS = 60.0
STOP_GRACE_SECONDS = 8.0


@dataclass
class _Schedule:
    """When each periodic duty is next due (monotonic seconds)."""

    rescan: dict[str, float] = field(default_factory=dict)
    probe: float = 0.0
    watchdog: float = 0.0


class Agent:
    """The odx-agent daemon. ``run()`` blocks until ``stop()``; ``start()``/``stop()`` run it
    on a thread of its own (tests, the demo)."""

    def __init__(
        self,
        config: AgentConfig,
        *,
        clock: Callable[[], float] = time.time,
        notifier: SystemdNotifier | None = None,
        metrics: AgentMetrics | None = None,
    ) -> None:
        self._clock = clock
        self._notifier = notifier or SystemdNotifier.from_environment()
        self._wake = threading.Event()
        self._reload = threading.Event()
        self._dirty: set[tuple[str, str]] = set()
        self._dirty_lock = threading.Lock()
        self._busy: set[int] = set()
        self._busy_lock = threading.Lock()
        self._uploads_running = 0
        self._thread: threading.Thread | None = None
        self._schedule = _Schedule()
        self._last_status = ""
        self._status_revision = -1
        self._in_flight = False
        self._next_drop_due: float | None = None
        self.heartbeat = Heartbeat(max_age_seconds=max(30.0, config.poll_interval_seconds * 6))
        self.metrics = metrics or AgentMetrics(
            watches=[watch.name for watch in config.watches],
            nodes=[node.name for node in config.nodes],
            version=__version__,
        )
        self._lock = InstanceLock(Path(f"{config.state_file}.lock"))
        self._lock.acquire()
        callback_key: bytes | None = None
        try:
            if config.callback_url and config.callback_listen:
                callback_key = load_or_create_key(key_path(config.state_file))
            store = Store.open(config.state_file)
        except Exception:
            self._lock.release()
            raise
        self.runtime = Runtime(
            config=config,
            store=store,
            nodes=NodePool(config.nodes, metrics=self.metrics, clock=clock),
            metrics=self.metrics,
            lifecycle=Lifecycle(
                store=store,
                metrics=self.metrics,
                clock=clock,
                config=lambda: self.runtime.config,
                watch=lambda name: self.runtime.watch(name),
            ),
            clock=clock,
        )
        self._callbacks = CallbackInbox(self.wake)
        self._callback_server: CallbackServer | None = None
        if callback_key is not None and config.callback_url and config.callback_listen:
            callback_secrets = CallbackSecrets(config.callback_url, callback_key)
            self.runtime.callback = callback_secrets.url
            self._callback_server = CallbackServer(
                config.callback_listen, callback_secrets, self._callbacks.announce
            )
        self.metrics.set_drop_counts_source(store.counts)
        self.metrics.set_oldest_source(self._oldest)
        self._detector = Detector(self.runtime)
        self._jobs = JobRunner(self.runtime)
        self._watcher = FolderWatcher(self._on_change)
        self._uploads = GrowingPool(config.max_parallel_uploads, "uploads")
        self._io = GrowingPool(4, "node")
        # webhooks and commands that hang must not hold up node polls: threads of their own
        self._notify = GrowingPool(2, "notify")
        self._notifications = NotificationSender(self.runtime, self._notify)
        # probes wait up to the client timeout on a hanging node: on their own threads, one
        # at a time per node, so they never pile up in front of task polls
        self._probes = GrowingPool(len(config.nodes), "probe")
        self._probing: set[str] = set()
        self._downloads = GrowingPool(2, "downloads")
        self._server: MetricsServer | None = None

    # -- control ---------------------------------------------------------------------------

    def start(self) -> None:
        """Run the daemon on a background thread; return once it is serving."""
        ready = threading.Event()
        self._thread = threading.Thread(target=self.run, args=(ready,), name="odx-agent-main")
        self._thread.start()
        ready.wait(30)

    def stop(self) -> None:
        """Ask the loop to finish (from any thread or a signal handler)."""
        self.runtime.stopping.set()
        self._wake.set()
        if self._thread is not None and threading.current_thread() is not self._thread:
            self._thread.join(STOP_GRACE_SECONDS + 5)

    def reload(self) -> None:
        """Ask the loop to reread the config file (SIGHUP)."""
        self._reload.set()
        self._wake.set()

    def wake(self) -> None:
        self._wake.set()

    def run(self, ready: threading.Event | None = None) -> int:
        """Run until stopped. Return the exit code (0: stopped on request)."""
        runtime = self.runtime
        try:
            self._start_serving()
            reconcile(self.runtime)
            for watch in runtime.config.watches:
                self._detector.scan(watch)
            self._notifier.ready()
            log.info(
                "odx-agent running",
                version=__version__,
                watches=[w.name for w in runtime.config.watches],
                nodes=runtime.nodes.names,
                state_file=str(runtime.config.state_file),
            )
            if ready is not None:
                ready.set()
            while not runtime.stopping.is_set():
                # cleared before the turn: a wake-up that comes during it is not lost
                self._wake.clear()
                self._turn()
                self._wake.wait(self._sleep_seconds())
        finally:
            if ready is not None:
                ready.set()
            self._shutdown()
        return 0

    # -- one turn of the loop ----------------------------------------------------------------

    def _turn(self) -> None:
        self.heartbeat.beat()
        now_mono = time.monotonic()
        interval = self._notifier.watchdog_interval()
        if interval is not None and now_mono >= self._schedule.watchdog:
            self._notifier.watchdog()
            self._schedule.watchdog = now_mono + interval / 2
        if self._reload.is_set():
            self._reload.clear()
            self._do_reload()
        self._detect(now_mono)
        self._handle_requests()
        self._dispatch()
        self._notifications.send_due()
        if now_mono >= self._schedule.probe:
            config = self.runtime.config
            # with drops in flight the nodes are watched closely; at rest, once a rescan
            every = config.poll_interval_seconds if self._in_flight else config.rescan_seconds
            self._schedule.probe = now_mono + min(every, IDLE_PROBE_SECONDS)
            for name in self.runtime.nodes.names:
                if name not in self._probing:
                    self._probing.add(name)
                    self._probes.submit(self._probe, self.runtime.nodes, name)
        self._status()

    def _probe(self, nodes: NodePool, name: str) -> None:
        try:
            nodes.probe(name)
        finally:
            self._probing.discard(name)
            self._wake.set()  # a node back up may take ready drops now

    def _sleep_seconds(self) -> float:
        """Return how long the loop may sleep: until its next duty (a probe, a rescan, a
        systemd ping, a heartbeat, a drop or notification due), at most IDLE_TICK_SECONDS.
        File events, finished jobs and signals wake it sooner."""
        now_mono = time.monotonic()
        due = [
            self._schedule.probe,
            *self._schedule.rescan.values(),
            now_mono + self.heartbeat.max_age_seconds / 3,
        ]
        if self._notifier.watchdog_interval() is not None:
            due.append(self._schedule.watchdog)
        now = self.runtime.clock()
        wall = [self._next_drop_due, self.runtime.store.next_notification_at(now)]
        # what is overdue now is in hand already (or waits for a slot, and a finished job
        # wakes the loop): only times still ahead set the alarm
        due += [now_mono + (at - now) for at in wall if at is not None and at > now]
        return min(IDLE_TICK_SECONDS, max(MIN_SLEEP_SECONDS, min(due) - now_mono))

    def _detect(self, now_mono: float) -> None:
        runtime = self.runtime
        with self._dirty_lock:
            dirty, self._dirty = self._dirty, set()
        now = runtime.clock()
        for drop in runtime.store.active():  # waiting drops whose quiet time is over
            due = drop.next_attempt_at is not None and drop.next_attempt_at <= now
            if drop.state == DropState.WAITING and due:
                dirty.add((drop.watch, drop.name))
        for watch in runtime.config.watches:
            polled = watch.mode == "poll" or watch.name in self._watcher.polled
            every = (
                runtime.config.poll_interval_seconds if polled else runtime.config.rescan_seconds
            )
            if now_mono >= self._schedule.rescan.get(watch.name, 0.0):
                self._schedule.rescan[watch.name] = now_mono + every
                self._detector.scan(watch)
                continue
            names = {drop for watch_name, drop in dirty if watch_name == watch.name}
            if names:
                self._detector.scan(watch, names)

    def _dispatch(self) -> None:
        runtime = self.runtime
        now = runtime.clock()
        # tasks the node announced as ended are polled now, whatever their schedule; taken
        # before reading the drops, so no announcement is matched against an older state
        announced = self._callbacks.take()
        active = runtime.store.active()
        self._in_flight = bool(active)
        ahead = [d.next_attempt_at for d in active if d.next_attempt_at and d.next_attempt_at > now]
        self._next_drop_due = min(ahead, default=None)
        on_node: dict[str, int] = {}
        for drop in active:
            if drop.node and drop.state in (
                DropState.UPLOADING,
                DropState.PROCESSING,
                DropState.DOWNLOADING,
            ):
                on_node[drop.node] = on_node.get(drop.node, 0) + 1
        still_announced: set[str] = set()
        for drop in active:
            called = drop.state == DropState.PROCESSING and drop.task_uuid in announced
            if drop.id in self._busy or drop.requested:
                if called and drop.task_uuid:
                    still_announced.add(drop.task_uuid)  # a poll in flight may predate it
                continue
            if drop.next_attempt_at is not None and drop.next_attempt_at > now and not called:
                continue
            if drop.state == DropState.READY:
                if self._uploads_running >= runtime.config.max_parallel_uploads:
                    continue
                node = runtime.nodes.pick(on_node)
                if node is None:
                    continue
                on_node[node] = on_node.get(node, 0) + 1
                self._submit_upload(drop, _submission(runtime, node))
            elif drop.state == DropState.UPLOADING:
                if self._uploads_running < runtime.config.max_parallel_uploads:
                    self._submit_upload(drop, lambda d: continue_upload(runtime, d))
            elif drop.state == DropState.PROCESSING:
                self._submit(self._io, drop, lambda d: poll(runtime, d))
            elif drop.state == DropState.DOWNLOADING:
                self._submit(self._downloads, drop, lambda d: fetch(runtime, d))
        self._callbacks.put_back(still_announced)

    def _submit_upload(self, drop: Drop, job: Callable[[Drop], object]) -> None:
        with self._busy_lock:
            self._uploads_running += 1

        def counted(d: Drop) -> object:
            try:
                return job(d)
            finally:
                with self._busy_lock:
                    self._uploads_running -= 1

        self._submit(self._uploads, drop, counted)

    def _submit(self, pool: GrowingPool, drop: Drop, job: Callable[[Drop], object]) -> None:
        with self._busy_lock:
            self._busy.add(drop.id)

        def run() -> None:
            try:
                self._jobs.run(drop.id, job)
            finally:
                with self._busy_lock:
                    self._busy.discard(drop.id)
                self._wake.set()

        def forget(future: Future[None]) -> None:
            if future.cancelled():  # dropped from the queue at shutdown: it never ran
                with self._busy_lock:
                    self._busy.discard(drop.id)

        try:
            pool.submit(run).add_done_callback(forget)
        except RuntimeError:  # the pool is shutting down
            with self._busy_lock:
                self._busy.discard(drop.id)

    def _handle_requests(self) -> None:
        runtime = self.runtime
        for drop in runtime.store.requested():
            if drop.id in self._busy:
                if drop.requested == "cancel":
                    runtime.canceled.add(drop.id)
                continue
            action = operator.cancel if drop.requested == "cancel" else operator.retry
            with self._busy_lock:
                self._busy.add(drop.id)

            def run(d: Drop = drop, act: Callable[[Runtime, Drop], None] = action) -> None:
                try:
                    act(runtime, d)
                except Exception:
                    log.exception("operator request failed", drop_id=d.id)
                finally:
                    with self._busy_lock:
                        self._busy.discard(d.id)
                    self._wake.set()

            self._io.submit(run)

    def _status(self) -> None:
        store = self.runtime.store
        if store.revision == self._status_revision:
            return  # nothing was written since the last summary
        self._status_revision = store.revision
        counts: dict[str, int] = {}
        for (_watch, state), count in self.runtime.store.counts().items():
            counts[state] = counts.get(state, 0) + count
        line = summary_line(counts)
        if line != self._last_status:
            self._last_status = line
            self._notifier.status(line)

    # -- start-up, reload, shutdown ------------------------------------------------------------

    def _start_serving(self) -> None:
        config = self.runtime.config
        if config.metrics.enabled:
            self._server = MetricsServer(config.metrics.listen, self.metrics.registry, self._health)
            self._server.start()
        if self._callback_server is not None:
            self._callback_server.start()
        self._watcher.start(_watched(config))

    def _health(self) -> tuple[bool, dict[str, object]]:
        alive, details = self.heartbeat.health()
        store_ok = self.runtime.store.ping() if alive else False
        return alive and store_ok, {
            **details,
            "state_file": "ok" if store_ok else "unknown",
            "nodes": self.runtime.nodes.describe(),
        }

    def _do_reload(self) -> None:
        runtime = self.runtime
        self._notifier.reloading()
        try:
            config = load_config(runtime.config.config_path)
        except ConfigError as error:
            runtime.metrics.error("config")
            for line in error.lines:
                log.exception("reload refused; keeping the running configuration", problem=line)
            self._notifier.ready()
            return
        kept = {watch.name for watch in config.watches}
        for watch in runtime.config.watches:
            if watch.name not in kept:
                runtime.retired[watch.name] = watch
        for name in kept:
            runtime.retired.pop(name, None)
        for key in restart_only_changes(runtime.config, config):
            log.warning("setting changed; it takes effect at the next start", setting=key)
        if config.log != runtime.config.log:  # the masked secrets are kept
            configure_logging(level=config.log.level, fmt=config.log.format)
        for node in config.nodes:
            add_secret(node.token)  # a new or rotated token is masked from now on
        in_use = {drop.node for drop in runtime.store.active() if drop.node}
        runtime.config = config
        runtime.nodes = runtime.nodes.reconfigured(config.nodes, in_use)
        self._uploads.grow(config.max_parallel_uploads)
        self._probes.grow(len(config.nodes))
        self.metrics.reconfigure([w.name for w in config.watches], [n.name for n in config.nodes])
        self._watcher.stop()
        self._watcher.start(_watched(config))
        self._schedule.rescan.clear()
        log.info(
            "configuration reloaded",
            watches=sorted(kept),
            nodes=runtime.nodes.names,
            retired_nodes=runtime.nodes.retired,
        )
        self._notifier.ready()

    def _shutdown(self) -> None:
        self.runtime.stopping.set()
        self._notifier.stopping()
        self._watcher.stop()
        for pool in (self._uploads, self._io, self._downloads, self._probes, self._notify):
            pool.shutdown()
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        while self._busy and time.monotonic() < deadline:
            time.sleep(0.05)
        if self._server is not None:
            self._server.stop()
        if self._callback_server is not None:
            self._callback_server.stop()
        if not self._busy:
            self.runtime.store.close()
        self._lock.release()
        log.info("odx-agent stopped", unfinished_jobs=len(self._busy))

    def _on_change(self, watch: str, drop: str) -> None:
        with self._dirty_lock:
            self._dirty.add((watch, drop))
        self._wake.set()

    def _oldest(self) -> tuple[float | None, float | None]:
        now = self.runtime.clock()
        active = self.runtime.store.active()
        oldest_active = min((d.created_at for d in active), default=None)
        undownloaded = min(
            (
                d.node_finished_at
                for d in active
                if d.state == DropState.DOWNLOADING and d.node_finished_at
            ),
            default=None,
        )
        return (
            None if oldest_active is None else now - oldest_active,
            None if undownloaded is None else now - undownloaded,
        )


def _submission(runtime: Runtime, node: str) -> Callable[[Drop], object]:
    def submit(drop: Drop) -> Drop:
        return continue_upload(runtime, start_upload(runtime, drop, node))

    return submit


def _watched(config: AgentConfig) -> list[WatchedFolder]:
    return [WatchedFolder(watch.name, watch.path, watch.mode) for watch in config.watches]
