"""The schema itself: every field described, the public key names exactly as documented."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from odx_agent.config import (
    AgentConfig,
    NodeConfig,
    NotifyConfig,
    ReadyConfig,
    Ticket,
    WatchConfig,
)
from odx_agent.config.nodes import NodeEntry
from odx_agent.config.schema import ConfigFile
from odx_agent.config.sections import LogConfig, MetricsConfig

MODELS: list[type[BaseModel]] = [
    AgentConfig,
    ConfigFile,
    LogConfig,
    MetricsConfig,
    NodeConfig,
    NodeEntry,
    NotifyConfig,
    ReadyConfig,
    Ticket,
    WatchConfig,
]


@pytest.mark.parametrize("model", MODELS, ids=lambda model: model.__name__)
def test_every_field_has_a_description(model: type[BaseModel]) -> None:
    undescribed = [name for name, field in model.model_fields.items() if not field.description]
    assert undescribed == []


def test_the_file_keys_are_the_documented_contract() -> None:
    assert set(ConfigFile.model_fields) == {
        "state_file", "nodes", "presets_dir", "poll_interval_seconds", "rescan_seconds",
        "max_parallel_uploads", "uploads_per_drop", "give_up_after_hours", "metrics", "log",
        "notify", "callback_url", "callback_listen", "watches",
    }  # fmt: skip
    assert set(NodeEntry.model_fields) == {
        "name", "url", "token_file", "token_env", "max_active_tasks",
    }  # fmt: skip
    assert set(WatchConfig.model_fields) == {
        "name", "path", "output", "preset", "mode", "ready", "on_success", "on_failure",
        "remove_after_download", "keep_archive", "notify",
    }  # fmt: skip
    assert set(ReadyConfig.model_fields) == {"marker", "settle_seconds", "min_images"}
    assert set(NotifyConfig.model_fields) == {"webhook", "command", "timeout_seconds", "events"}
    assert set(MetricsConfig.model_fields) == {"listen", "enabled"}
    assert set(LogConfig.model_fields) == {"level", "format"}
    assert set(Ticket.model_fields) == {"preset", "options", "name"}
    assert set(AgentConfig.model_fields) == set(ConfigFile.model_fields) | {
        "config_path",
        "presets",
    }


def test_the_node_token_is_kept_out_of_repr_and_str() -> None:
    node = NodeConfig(name="main", base_url="http://127.0.0.1:3000", token="hidden-value")
    assert "hidden-value" not in repr(node)
    assert "hidden-value" not in str(node)
    entry = NodeEntry(url="http://127.0.0.1:3000/?token=hidden-value")
    assert "hidden-value" not in repr(entry)
