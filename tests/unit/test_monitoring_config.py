"""The Prometheus alert rules and the Grafana dashboard name only metrics the agent serves,
and (where promtool is installed) parse and fire as intended."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from odx_agent.metrics import AgentMetrics

CONFIG = Path(__file__).resolve().parents[2] / "config"
ALERTS = CONFIG / "alerts.yml"
DASHBOARD = CONFIG / "grafana-dashboard.json"

_KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan"}
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")


def _served_names() -> set[str]:
    registry = AgentMetrics(watches=["w"], nodes=["n"], version="0").registry
    names: set[str] = set()
    for family in registry.collect():
        names.add(family.name)
        names.update(sample.name for sample in family.samples)
    return names


def metric_names(expr: str) -> set[str]:
    """Return the metric names a PromQL expression selects (functions, keywords, labels,
    grouping clauses, ranges and strings left out)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)
    text = re.sub(r"\{[^}]*\}", "", text)
    text = re.sub(r"\[[^\]]*\]", "", text)
    text = _GROUPING.sub("", text)
    names = set()
    for match in re.finditer(r"(?<![\w$.])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?", text):
        if match.group(2) is None and match.group(1).lower() not in _KEYWORDS:
            names.add(match.group(1))
    return names


def _alert_rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(ALERTS.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def _dashboard_exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


def _promtool() -> str:
    found = os.environ.get("PROMTOOL") or shutil.which("promtool")
    if not found:
        pytest.skip("promtool is not installed here (Debian package prometheus)")
    return found


def test_metric_names_helper_reads_promql() -> None:
    expr = (
        'sum by (le, stage) (rate(a_bucket{x=~"y|z"}[5m])) > 2 * 3600 '
        "and on (watch) b_total unless c"
    )
    assert metric_names(expr) == {"a_bucket", "b_total", "c"}


def test_alert_rules_name_only_served_metrics() -> None:
    served = _served_names()
    rules = _alert_rules()
    assert len(rules) == 8
    for rule in rules:
        names = metric_names(rule["expr"])
        assert names, rule["alert"]
        assert names <= served, (rule["alert"], names - served)
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert rule["annotations"]["summary"]


def test_dashboard_names_only_served_metrics_and_shows_every_family() -> None:
    served = _served_names()
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "odx-agent"
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    used: set[str] = set()
    for expr in _dashboard_exprs():
        names = metric_names(expr)
        assert names <= served, (expr, names - served)
        used |= names
    families = {
        "odx_agent_drops",
        "odx_agent_drops_finished_total",
        "odx_agent_upload_bytes_total",
        "odx_agent_download_bytes_total",
        "odx_agent_stage_duration_seconds_bucket",
        "odx_agent_node_up",
        "odx_agent_node_queue_tasks",
        "odx_agent_retries_total",
        "odx_agent_errors_total",
        "odx_agent_oldest_active_drop_seconds",
        "odx_agent_oldest_undownloaded_result_seconds",
        "odx_agent_last_success_timestamp_seconds",
        "odx_agent_build_info",
    }
    assert used == families


def test_promtool_accepts_the_rules_and_the_dashboard_queries(tmp_path: Path) -> None:
    promtool = _promtool()
    checked = subprocess.run(
        [promtool, "check", "rules", str(ALERTS)], capture_output=True, text=True, timeout=60
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 8 rules found" in checked.stdout
    # Dashboard queries, with Grafana's variables filled in, as recording rules.
    records = [
        {
            "record": f"dashboard:query_{number}",
            "expr": expr.replace("$__rate_interval", "5m").replace("$instance", ".*"),
        }
        for number, expr in enumerate(_dashboard_exprs())
    ]
    rules = tmp_path / "dashboard-rules.yml"
    rules.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": records}]}))
    checked = subprocess.run(
        [promtool, "check", "rules", str(rules)], capture_output=True, text=True, timeout=60
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def _expected(alertname: str, eval_time: str, *alerts: dict[str, Any]) -> dict[str, Any]:
    return {"eval_time": eval_time, "alertname": alertname, "exp_alerts": list(alerts)}


def test_alerts_fire_on_the_situations_they_describe(tmp_path: Path) -> None:
    promtool = _promtool()
    job = {"job": "odx-agent", "instance": "ingest:9101"}

    def series(name: str, values: str, **labels: str) -> dict[str, str]:
        rendered = ",".join(f'{key}="{value}"' for key, value in {**job, **labels}.items())
        return {"series": f"{name}{{{rendered}}}", "values": values}

    last_success = 1  # Unix time 1 s: long before the 47 h and 50 h evaluations
    cases = {
        "rule_files": [str(ALERTS)],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    series("odx_agent_build_info", "1x20", version="1.0"),
                    series("odx_agent_node_up", "1 1 0x10", node="odm1"),
                    series("odx_agent_node_up", "1x12", node="odm2"),
                    series(
                        "odx_agent_drops_finished_total", "0 0 1 1", watch="north", result="failed"
                    ),
                    series(
                        "odx_agent_drops_finished_total", "0 0 0 0", watch="south", result="failed"
                    ),
                    series("odx_agent_oldest_undownloaded_result_seconds", "129300+60x20"),
                    series("odx_agent_errors_total", "0 1 2 3 4", kind="auth"),
                ],
                "alert_rule_test": [
                    _expected(
                        "OdxAgentNodeDown",
                        "8m",
                        {
                            "exp_labels": {**job, "node": "odm1", "severity": "critical"},
                            "exp_annotations": {
                                "summary": "NodeODX node odm1 is unreachable",
                                "description": "odx-agent has not reached node odm1 for 5 "
                                "minutes; drops wait until it is back.",
                            },
                        },
                    ),
                    _expected("OdxAgentNodeDown", "5m"),
                    _expected(
                        "OdxAgentDropFailed",
                        "3m",
                        {
                            "exp_labels": {
                                **job,
                                "watch": "north",
                                "result": "failed",
                                "severity": "warning",
                            },
                            "exp_annotations": {
                                "summary": "A drop of watch north failed",
                                "description": "1 drop(s) of watch north failed in the last "
                                "15 minutes; see the journal of odx-agent.",
                            },
                        },
                    ),
                    _expected("OdxAgentResultsAboutToExpire", "1m"),
                    _expected(
                        "OdxAgentResultsAboutToExpire",
                        "10m",
                        {
                            "exp_labels": {**job, "severity": "critical"},
                            "exp_annotations": {
                                "summary": "Results on the node will be deleted soon",
                                "description": "A finished task has waited 1d 12h 5m 0s for "
                                "its download; the node deletes it at 48 h.",
                            },
                        },
                    ),
                    _expected(
                        "OdxAgentNeedsAttention",
                        "4m",
                        {
                            "exp_labels": {"kind": "auth", "severity": "critical"},
                            "exp_annotations": {
                                "summary": "odx-agent needs attention: auth error",
                                "description": "odx-agent met auth errors in the last 10 "
                                "minutes; retrying will not fix them.",
                            },
                        },
                    ),
                    _expected("OdxAgentMetricsAbsent", "15m"),
                ],
            },
            {
                # Samples every minute: sparser ones go stale between evaluations.
                "interval": "1m",
                "input_series": [
                    series(
                        "odx_agent_last_success_timestamp_seconds",
                        f"{last_success}x3100",
                        watch="n",
                    ),
                    series(
                        "odx_agent_last_success_timestamp_seconds",
                        f"{last_success}x3100",
                        watch="s",
                    ),
                    series("odx_agent_drops", "2x3100", watch="n", state="processing"),
                    series("odx_agent_drops", "0x3100", watch="s", state="processing"),
                    series("odx_agent_drops", "9x3100", watch="s", state="completed"),
                ],
                "alert_rule_test": [
                    _expected("OdxAgentNoRecentSuccess", "47h"),
                    _expected(
                        "OdxAgentNoRecentSuccess",
                        "50h",
                        {
                            "exp_labels": {**job, "watch": "n", "severity": "warning"},
                            "exp_annotations": {
                                "summary": "No drop of watch n completed for two days",
                                "description": "Drops of watch n are pending but none "
                                "completed for two days.",
                            },
                        },
                    ),
                ],
            },
        ],
    }
    test_file = tmp_path / "alerts-test.yml"
    test_file.write_text(yaml.safe_dump(cases))
    result = subprocess.run(
        [promtool, "test", "rules", str(test_file)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
