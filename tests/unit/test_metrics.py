"""AgentMetrics on its own registry, and the /metrics and /healthz endpoint over HTTP."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from prometheus_client import REGISTRY, CollectorRegistry

from odx_agent.metrics import (
    DROP_STATES,
    ERROR_KINDS,
    OTHER,
    AgentMetrics,
    Heartbeat,
    MetricsServer,
    parse_listen,
)


def _metrics() -> AgentMetrics:
    return AgentMetrics(watches=["north", "south"], nodes=["odm1"], version="1.2.3")


def _value(metrics: AgentMetrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def _series_count(registry: CollectorRegistry) -> int:
    return sum(len(family.samples) for family in registry.collect())


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_each_instance_has_its_own_registry_and_leaves_the_global_one_alone() -> None:
    first, second = _metrics(), _metrics()
    first.drop_finished("north", "completed")
    assert first.registry is not second.registry
    assert _value(first, "odx_agent_drops_finished_total", watch="north", result="completed") == 1
    assert _value(second, "odx_agent_drops_finished_total", watch="north", result="completed") == 0
    assert REGISTRY.get_sample_value("odx_agent_build_info", {"version": "1.2.3"}) is None
    assert _value(first, "odx_agent_build_info", version="1.2.3") == 1


def test_drop_gauge_has_every_watch_and_state_and_reads_the_source_at_scrape() -> None:
    metrics = _metrics()
    counts = {("north", "uploading"): 3, ("south", "completed"): 41}
    metrics.set_drop_counts_source(lambda: counts)
    assert _value(metrics, "odx_agent_drops", watch="north", state="uploading") == 3
    assert _value(metrics, "odx_agent_drops", watch="south", state="completed") == 41
    for watch in ("north", "south"):
        for state in DROP_STATES:
            assert _value(metrics, "odx_agent_drops", watch=watch, state=state) is not None
    counts[("north", "uploading")] = 0
    counts[("north", "processing")] = 3
    assert _value(metrics, "odx_agent_drops", watch="north", state="uploading") == 0
    assert _value(metrics, "odx_agent_drops", watch="north", state="processing") == 3


def test_unknown_watches_and_states_from_the_source_are_summed_under_other() -> None:
    metrics = _metrics()
    metrics.set_drop_counts_source(
        lambda: {("gone", "failed"): 2, ("north", "queued"): 1, ("old", "weird"): 4}
    )
    assert _value(metrics, "odx_agent_drops", watch=OTHER, state="failed") == 2
    assert _value(metrics, "odx_agent_drops", watch="north", state=OTHER) == 1
    assert _value(metrics, "odx_agent_drops", watch=OTHER, state=OTHER) == 4


def test_a_failing_source_keeps_the_scrape_alive_and_counts_an_internal_error() -> None:
    metrics = _metrics()

    def broken() -> dict[tuple[str, str], int]:
        raise RuntimeError("database is locked")

    metrics.set_drop_counts_source(broken)
    assert _value(metrics, "odx_agent_drops", watch="north", state="waiting") == 0
    assert _value(metrics, "odx_agent_errors_total", kind="internal") == 1


def test_oldest_ages_come_from_the_source_and_none_means_zero() -> None:
    metrics = _metrics()
    assert _value(metrics, "odx_agent_oldest_active_drop_seconds") == 0
    ages: tuple[float | None, float | None] = (7200.0, None)
    metrics.set_oldest_source(lambda: ages)
    assert _value(metrics, "odx_agent_oldest_active_drop_seconds") == 7200
    assert _value(metrics, "odx_agent_oldest_undownloaded_result_seconds") == 0
    ages = (None, 130000.0)
    assert _value(metrics, "odx_agent_oldest_active_drop_seconds") == 0
    assert _value(metrics, "odx_agent_oldest_undownloaded_result_seconds") == 130000


def test_counters_gauges_and_histogram_record_exact_values() -> None:
    metrics = _metrics()
    metrics.drop_finished("north", "failed")
    metrics.drop_finished("north", "failed")
    metrics.add_upload_bytes(1000)
    metrics.add_upload_bytes(24)
    metrics.add_download_bytes(5)
    metrics.observe_stage("processing", 90.0)
    metrics.observe_stage("processing", 4000.0)
    metrics.set_node_up("odm1", True)
    metrics.set_node_queue("odm1", 4)
    metrics.retry("upload")
    metrics.error("auth")
    metrics.set_last_success("south", 1_700_000_000.0)
    assert _value(metrics, "odx_agent_drops_finished_total", watch="north", result="failed") == 2
    assert _value(metrics, "odx_agent_upload_bytes_total") == 1024
    assert _value(metrics, "odx_agent_download_bytes_total") == 5
    histogram = "odx_agent_stage_duration_seconds"
    assert _value(metrics, f"{histogram}_count", stage="processing") == 2
    assert _value(metrics, f"{histogram}_sum", stage="processing") == 4090
    assert _value(metrics, f"{histogram}_bucket", stage="processing", le="120.0") == 1
    assert _value(metrics, f"{histogram}_bucket", stage="processing", le="604800.0") == 2
    assert _value(metrics, "odx_agent_node_up", node="odm1") == 1
    assert _value(metrics, "odx_agent_node_queue_tasks", node="odm1") == 4
    assert _value(metrics, "odx_agent_retries_total", stage="upload") == 1
    assert _value(metrics, "odx_agent_errors_total", kind="auth") == 1
    assert _value(metrics, "odx_agent_last_success_timestamp_seconds", watch="south") == 1.7e9
    metrics.set_last_success("south", 1_600_000_000.0)  # an earlier drop reported late
    assert _value(metrics, "odx_agent_last_success_timestamp_seconds", watch="south") == 1.7e9
    metrics.set_node_up("odm1", False)
    assert _value(metrics, "odx_agent_node_up", node="odm1") == 0


def test_labels_stay_bounded_whatever_values_arrive() -> None:
    metrics = _metrics()
    metrics.set_drop_counts_source(lambda: {("north", "completed"): 1})
    metrics.drop_finished("north", "completed")
    metrics.error("whatever")
    before = _series_count(metrics.registry)
    for number in range(50):
        metrics.drop_finished(f"watch-{number}", f"result-{number}")
        metrics.drop_finished("south", "completed")
        metrics.observe_stage(f"stage-{number}", 1.0)
        metrics.retry(f"stage-{number}")
        metrics.error(f"kind-{number}")
        metrics.set_node_up(f"node-{number}", True)
        metrics.set_node_queue(f"node-{number}", number)
        metrics.set_last_success(f"watch-{number}", 1.0)
    assert _series_count(metrics.registry) == before
    assert (
        _value(metrics, "odx_agent_drops_finished_total", watch="south", result="completed") == 50
    )
    assert _value(metrics, "odx_agent_drops_finished_total", watch=OTHER, result=OTHER) == 50
    assert _value(metrics, "odx_agent_errors_total", kind="internal") == 51
    assert _value(metrics, "odx_agent_errors_total", kind="kind-1") is None


def test_reconfigure_adds_new_names_and_drops_the_series_of_removed_ones() -> None:
    metrics = _metrics()
    metrics.drop_finished("south", "completed")
    metrics.reconfigure(["north", "east"], ["odm2"])
    assert metrics.watches == ("north", "east")
    assert (
        _value(metrics, "odx_agent_drops_finished_total", watch="south", result="completed") is None
    )
    assert _value(metrics, "odx_agent_drops_finished_total", watch="east", result="failed") == 0
    assert _value(metrics, "odx_agent_drops", watch="east", state="ready") == 0
    assert _value(metrics, "odx_agent_drops", watch="south", state="ready") is None
    assert _value(metrics, "odx_agent_node_up", node="odm1") is None
    assert _value(metrics, "odx_agent_node_up", node="odm2") == 0
    metrics.drop_finished("south", "completed")
    assert _value(metrics, "odx_agent_drops_finished_total", watch=OTHER, result="completed") == 1


def test_every_error_kind_starts_at_zero() -> None:
    metrics = _metrics()
    for kind in ERROR_KINDS:
        assert _value(metrics, "odx_agent_errors_total", kind=kind) == 0


def test_heartbeat_is_healthy_until_beats_stop_for_longer_than_max_age() -> None:
    clock = _Clock()
    heartbeat = Heartbeat(max_age_seconds=30, clock=clock)
    assert heartbeat.healthy()
    clock.now += 30
    assert heartbeat.healthy()
    clock.now += 1
    assert not heartbeat.healthy()
    heartbeat.beat()
    assert heartbeat.healthy()
    assert heartbeat.health() == (True, {"last_beat_age_seconds": 0.0, "max_age_seconds": 30})


@pytest.mark.parametrize(
    ("listen", "expected"),
    [
        ("127.0.0.1:9101", ("127.0.0.1", 9101)),
        (":9101", ("127.0.0.1", 9101)),
        ("0.0.0.0:80", ("0.0.0.0", 80)),
        ("[::1]:9101", ("::1", 9101)),
    ],
)
def test_parse_listen(listen: str, expected: tuple[str, int]) -> None:
    assert parse_listen(listen) == expected


@pytest.mark.parametrize("listen", ["9101", "host:", "host:http", "host:70000"])
def test_parse_listen_rejects_malformed_addresses(listen: str) -> None:
    with pytest.raises(ValueError, match="HOST:PORT"):
        parse_listen(listen)


@pytest.fixture
def served() -> Iterator[tuple[AgentMetrics, _Clock, MetricsServer]]:
    metrics = _metrics()
    clock = _Clock()
    heartbeat = Heartbeat(max_age_seconds=60, clock=clock)
    server = MetricsServer("127.0.0.1:0", metrics.registry, heartbeat.health)
    server.start()
    try:
        yield metrics, clock, server
    finally:
        server.stop()


def _get(port: int, path: str) -> tuple[int, str, str]:
    url = f"http://127.0.0.1:{port}{path}"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.headers["Content-Type"], response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read().decode()


def test_server_serves_metrics_over_http(
    served: tuple[AgentMetrics, _Clock, MetricsServer],
) -> None:
    metrics, _, server = served
    metrics.set_drop_counts_source(lambda: {("north", "processing"): 2})
    metrics.drop_finished("north", "completed")
    status, content_type, body = _get(server.port, "/metrics")
    assert status == 200
    assert content_type.startswith("text/plain; version=")
    assert 'odx_agent_drops{state="processing",watch="north"} 2.0' in body.splitlines()
    assert (
        'odx_agent_drops_finished_total{result="completed",watch="north"} 1.0' in body.splitlines()
    )
    assert _get(server.port, "/nothing")[0] == 404


def test_healthz_flips_to_503_when_beats_stop(
    served: tuple[AgentMetrics, _Clock, MetricsServer],
) -> None:
    _, clock, server = served
    status, content_type, body = _get(server.port, "/healthz")
    assert (status, content_type) == (200, "application/json")
    assert json.loads(body) == {"ok": True, "last_beat_age_seconds": 0.0, "max_age_seconds": 60}
    clock.now += 61
    status, _, body = _get(server.port, "/healthz")
    assert status == 503
    assert json.loads(body) == {"ok": False, "last_beat_age_seconds": 61.0, "max_age_seconds": 60}


def test_healthz_answers_503_when_the_check_itself_fails() -> None:
    def broken() -> tuple[bool, dict[str, object]]:
        raise RuntimeError("boom")

    server = MetricsServer("127.0.0.1:0", CollectorRegistry(), broken)
    server.start()
    try:
        status, _, body = _get(server.port, "/healthz")
    finally:
        server.stop()
    assert status == 503
    assert json.loads(body) == {"ok": False, "error": "RuntimeError"}


def test_stopped_server_releases_its_port() -> None:
    server = MetricsServer("127.0.0.1:0", CollectorRegistry(), lambda: (True, {}))
    server.start()
    port = server.port
    server.stop()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2)
    with pytest.raises(RuntimeError, match="not started"):
        _ = server.port
