"""What the daemon costs at rest, with a long history in its state file.

A state file is seeded (bench.seedstate) with 1,000 completed drops whose folders exist
and 9,000 older finished rows; the daemon (``odx-agent run``, its own process) starts on
it next to a simulated node, and its CPU is read with psutil over fixed windows once
start-up is over: first with nobody reading /metrics, then with /metrics read every
SCRAPE_SECONDS as Prometheus would. ``odx-agent status --json`` is timed beside it. The
run is void unless the daemon left every seeded drop as it was and sent the node nothing.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import requests

from bench.measure import run_measured
from bench.nodeproc import simulated_node
from bench.procstat import cpu_seconds, memory_kb
from bench.report import Section
from bench.seedstate import SeededState, seed_state
from odx_agent.agent.loop import IDLE_TICK_SECONDS
from odx_agent.store import Store
from tests.support.agentproc import AgentLayout, AgentProcess

REPO_ROOT = Path(__file__).resolve().parent.parent
POLL_INTERVAL_SECONDS = 5.0
RESCAN_SECONDS = 60.0
SETTLE_AFTER_START_SECONDS = 10.0
SCRAPE_SECONDS = 15.0
STATUS_RUNS = 5
HOUR = 3600.0
QUERY_RUNS = 21


@dataclass
class IdleRun:
    """Everything one idle run measured and checked."""

    seeded: SeededState
    seed_seconds: float
    start_seconds: float
    start_cpu: float
    window_seconds: float
    idle_cpu: float
    scraped_cpu: float
    scraped_window_seconds: float
    scrapes: int
    rss_mb: float
    state_file_written: bool
    status_walls: list[float] = field(default_factory=list)
    status_cpus: list[float] = field(default_factory=list)
    status_rows: int = 0
    node_tasks: int = 0
    rows_after: Counter[str] = field(default_factory=Counter)
    query_ms: dict[str, float] = field(default_factory=dict)


def measure_idle(current: int, older: int, window: float) -> IdleRun:
    """Given the drop counts and a window in seconds, seed a state file, run the daemon on
    it and return what it cost at rest. Raise RuntimeError when the daemon touched any
    seeded drop or created a task."""
    with tempfile.TemporaryDirectory(prefix="odx-bench-idle-") as work:
        base = Path(work)
        layout = AgentLayout(base / "agent")
        store = Store.open(layout.state_file)
        started = time.perf_counter()
        seeded = seed_state(
            store,
            watch="w",
            watch_path=layout.watch(),
            output_path=layout.output(),
            current=current,
            older=older,
            now=time.time(),
        )
        seed_seconds = time.perf_counter() - started
        before = {drop.id: (drop.state, drop.updated_at) for drop in store.all()}
        query_ms = time_queries(store, "w")
        store.close()
        with simulated_node(base / "node", processing_seconds=1.0) as url:
            layout.write_config(
                url,
                poll_interval_seconds=POLL_INTERVAL_SECONDS,
                rescan_seconds=RESCAN_SECONDS,
                settle_seconds=5.0,
            )
            agent = AgentProcess(layout)
            started = time.perf_counter()
            agent.start(timeout=120)
            try:
                run = _measure_running(agent, layout, seeded, seed_seconds, started, window)
            finally:
                agent.stop()
            run.node_tasks = len(requests.get(f"{url}/task/list", timeout=10).json())
        store = Store.open(layout.state_file)
        try:
            after = store.all()
        finally:
            store.close()
    run.rows_after = Counter(drop.state.value for drop in after)
    run.query_ms = query_ms
    changed = [d.id for d in after if before.get(d.id) != (d.state, d.updated_at)]
    if run.node_tasks or changed or len(after) != seeded.total:
        raise RuntimeError(
            f"the daemon did not leave the seeded state alone: {run.node_tasks} tasks on the "
            f"node, {len(changed)} rows changed, {len(after)} rows of {seeded.total}"
        )
    return run


def time_queries(store: Store, watch: str) -> dict[str, float]:
    """Given a seeded store, return the median milliseconds of each store read the
    daemon makes while idle (each turn of its loop, or each rescan), over QUERY_RUNS."""
    reads: dict[str, Callable[[], object]] = {
        "counts()": store.counts,
        "active()": store.active,
        "requested()": store.requested,
        "due_notifications()": lambda: store.due_notifications(time.time()),
        "folder_marks()": lambda: store.folder_marks(watch),
    }
    timings: dict[str, float] = {}
    for name, read in reads.items():
        spans = []
        for _ in range(QUERY_RUNS):
            started = time.perf_counter()
            read()
            spans.append(time.perf_counter() - started)
        timings[name] = statistics.median(spans) * 1000
    return timings


def _measure_running(
    agent: AgentProcess,
    layout: AgentLayout,
    seeded: SeededState,
    seed_seconds: float,
    started: float,
    window: float,
) -> IdleRun:
    start_seconds = time.perf_counter() - started
    start_cpu = cpu_seconds(agent.pid)
    time.sleep(SETTLE_AFTER_START_SECONDS)
    written_before = _state_file_times(layout.state_file)
    idle_cpu, idle_seconds = _cpu_over(agent.pid, window)
    written_after = _state_file_times(layout.state_file)
    scrapes: list[int] = []
    stop = threading.Event()

    def scrape() -> None:
        while not stop.is_set():
            agent.metrics_text()
            scrapes.append(1)
            stop.wait(SCRAPE_SECONDS)

    scraper = threading.Thread(target=scrape, daemon=True)
    scraper.start()
    try:
        scraped_cpu, scraped_seconds = _cpu_over(agent.pid, window)
    finally:
        stop.set()
        scraper.join()
    run = IdleRun(
        seeded=seeded,
        seed_seconds=seed_seconds,
        start_seconds=start_seconds,
        start_cpu=start_cpu,
        window_seconds=idle_seconds,
        idle_cpu=idle_cpu,
        scraped_cpu=scraped_cpu,
        scraped_window_seconds=scraped_seconds,
        scrapes=len(scrapes),
        rss_mb=memory_kb(agent.pid)["VmRSS"] / 1024,
        state_file_written=written_before != written_after,
    )
    command = [sys.executable, "-m", "odx_agent", "status", "--json", "-c", str(layout.config_path)]
    for _ in range(STATUS_RUNS):
        measured = run_measured(command, timeout=120, cwd=REPO_ROOT)
        if measured.returncode != 0:
            raise RuntimeError(f"status --json failed: {measured.stderr[-2000:]}")
        run.status_rows = len(json.loads(measured.stdout))
        run.status_walls.append(measured.wall_seconds)
        run.status_cpus.append(measured.cpu_seconds)
    return run


def _state_file_times(state_file: Path) -> list[int]:
    """Given the state file, return the modification times of it and its WAL (0: none)."""
    times = []
    for path in (state_file, Path(f"{state_file}-wal")):
        try:
            times.append(path.stat().st_mtime_ns)
        except FileNotFoundError:
            times.append(0)
    return times


def _cpu_over(pid: int, window: float) -> tuple[float, float]:
    """Given a pid and seconds, return (its CPU seconds over that window, the window)."""
    cpu_before = cpu_seconds(pid)
    started = time.monotonic()
    time.sleep(window)
    return cpu_seconds(pid) - cpu_before, time.monotonic() - started


def idle_section(current: int = 1000, older: int = 9000, window: float = 120.0) -> Section:
    """Given the drop counts and the window, measure the daemon at rest; return the section."""
    run = measure_idle(current, older, window)
    per_hour = run.idle_cpu / run.window_seconds * HOUR
    scraped_per_hour = run.scraped_cpu / run.scraped_window_seconds * HOUR
    status_wall = statistics.median(run.status_walls)
    queries = run.query_ms
    per_turn_ms = 2 * queries["active()"] + queries["requested()"] + queries["due_notifications()"]
    rescan_ms = queries["folder_marks()"]
    section = Section(
        name="idle",
        title=f"daemon at rest, {current:,} completed drops, {run.seeded.total:,} state rows",
        columns=["figure", "value"],
        rows=[
            ["start-up: launch to serving, s", f"{run.start_seconds:.2f}"],
            ["start-up CPU s (launch to serving)", f"{run.start_cpu:.2f}"],
            [
                f"idle CPU s in {run.window_seconds:.0f} s, nobody reading /metrics",
                f"{run.idle_cpu:.2f}",
            ],
            ["idle CPU s per hour, nobody reading /metrics (extrapolated)", f"{per_hour:.1f}"],
            [
                f"idle CPU s in {run.scraped_window_seconds:.0f} s, "
                f"/metrics read every {SCRAPE_SECONDS:g} s ({run.scrapes} reads)",
                f"{run.scraped_cpu:.2f}",
            ],
            [
                f"idle CPU s per hour, /metrics read every {SCRAPE_SECONDS:g} s (extrapolated)",
                f"{scraped_per_hour:.1f}",
            ],
            ["daemon RSS at rest, MB", f"{run.rss_mb:.1f}"],
            ["state file written while idle", "yes" if run.state_file_written else "no"],
            [
                f"status --json wall s, median of {len(run.status_walls)} (max)",
                f"{status_wall:.2f} ({max(run.status_walls):.2f})",
            ],
            ["status --json CPU s, median", f"{statistics.median(run.status_cpus):.2f}"],
            ["status --json rows printed", f"{run.status_rows:,}"],
            ["tasks created on the node", str(run.node_tasks)],
            *[
                [f"store.{name} on the seeded file, ms (median of {QUERY_RUNS})", f"{ms:.2f}"]
                for name, ms in run.query_ms.items()
            ],
        ],
    )
    section.goals = [
        ("idle CPU < 10 s per hour", per_hour < 10, f"{per_hour:.1f} s/h"),
        (
            f"idle CPU < 10 s per hour with /metrics read every {SCRAPE_SECONDS:g} s",
            scraped_per_hour < 10,
            f"{scraped_per_hour:.1f} s/h",
        ),
        (
            f"status --json < 0.5 s at {run.status_rows:,} rows",
            status_wall < 0.5,
            f"{status_wall:.2f} s",
        ),
    ]
    states = ", ".join(f"{count:,} {state}" for state, count in sorted(run.rows_after.items()))
    section.notes = [
        f"State seeded through odx_agent.store (add_drop, then one transition per lifecycle "
        f"move, each its own transaction) in {run.seed_seconds:.0f} s: {run.seeded.current:,} "
        f"completed drops whose folders exist (two 2 kB images and .ready each; fingerprint "
        f"and marker time read from the folder) are the newest rows; before them "
        f"{run.seeded.earlier_versions:,} earlier versions of those folders, "
        f"{run.seeded.gone:,} rows of folders since removed and {run.seeded.retired:,} rows "
        f"of a watch no longer configured, one in ten failed. After the run: {states}.",
        f"Config: poll_interval_seconds {POLL_INTERVAL_SECONDS:g}, rescan_seconds "
        f"{RESCAN_SECONDS:g}, watch mode auto (inotify), metrics on, JSON logs at INFO to a "
        "file; a simulated node (own process) answers the daemon's probes. At rest the "
        "daemon's main loop sleeps until its next duty (a rescan every rescan_seconds, a "
        "node probe once a rescan interval while no drop is in flight, a heartbeat), at "
        f"most {IDLE_TICK_SECONDS:g} s.",
        f"CPU is psutil's user+system of the daemon process, read at the start and end of "
        f"each window; the first window starts {SETTLE_AFTER_START_SECONDS:g} s after the "
        f"daemon serves and each holds {run.window_seconds / RESCAN_SECONDS:.0f} full "
        "rescans. Per hour is the window's CPU scaled to 3,600 s (extrapolated, not "
        "measured over an hour).",
        f"Start-up is from launching `python -m odx_agent run` to its ready log line and "
        "/healthz answering; it includes the interpreter, imports, reconciling and the "
        f"first scan of the {current:,} folders.",
        f"status --json runs as its own process beside the running daemon ({STATUS_RUNS} "
        "times); wall includes interpreter start-up and imports.",
        "Store reads: the same reads the idle daemon makes, timed in the benchmark's own "
        f"process on the seeded file. The main loop turns at least every "
        f"{IDLE_TICK_SECONDS:g} s and each turn reads active() twice (detect and dispatch), "
        "requested() and "
        "due_notifications(); counts() (for the sd_notify status line and the drops gauge) "
        "runs only after a write and at each /metrics read; each rescan reads "
        "folder_marks() for the watch. The per-turn reads alone "
        f"come to {per_turn_ms * HOUR / IDLE_TICK_SECONDS / 1000:.1f} CPU s per hour at most, the "
        "rescans to "
        f"{rescan_ms * HOUR / RESCAN_SECONDS / 1000:.1f} (derived from these timings).",
        "The run is checked: after it, every seeded row has its state and updated_at "
        "unchanged and the node holds no task.",
    ]
    return section
