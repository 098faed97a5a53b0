"""The top level of the configuration: the file as written, and the loaded AgentConfig.

Both share one set of service fields (``ServiceSettings``); they differ only in the nodes
(an entry as written versus a loaded node with its token) and in what loading adds (the
config's own path and the resolved presets).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from pydantic import Field

from .fields import AtLeastOne, HostPort, PositiveSeconds, WebUrl
from .nodes import NodeConfig, NodeEntry
from .sections import LogConfig, MetricsConfig, NotifyConfig, ReadyConfig, Section, WatchConfig


class ServiceSettings(Section):
    """The settings that read the same in the file and in the loaded configuration."""

    state_file: Path = Field(
        description="SQLite file holding every drop's state; its folder must be writable.",
        examples=["/var/lib/odx-agent/state.sqlite"],
    )
    presets_dir: Path | None = Field(
        default=None,
        description="Folder with one NAME.yaml per preset; null when no preset is used.",
        examples=["/etc/odx-agent/presets"],
    )
    poll_interval_seconds: PositiveSeconds = Field(
        default=5.0, description="How often running tasks are asked for their status."
    )
    rescan_seconds: PositiveSeconds = Field(
        default=60.0, description="How often every watched folder is listed again."
    )
    max_parallel_uploads: AtLeastOne = Field(default=2, description="Drops uploading at once.")
    uploads_per_drop: AtLeastOne = Field(default=4, description="Files in flight per drop.")
    give_up_after_hours: PositiveSeconds = Field(
        default=24.0,
        description="Transient errors (node down, network) never fail a drop before this;"
        " a notification not delivered this long after a drop finished is dropped.",
    )
    metrics: MetricsConfig = Field(
        default_factory=MetricsConfig, description="Prometheus /metrics and /healthz."
    )
    log: LogConfig = Field(default_factory=LogConfig, description="Logging.")
    notify: NotifyConfig | None = Field(
        default=None, description="Announcements for every watch without its own notify."
    )
    callback_url: WebUrl | None = Field(
        default=None,
        description="Base URL at which the node can reach this agent; the node then"
        " announces finished tasks at once instead of waiting for the next poll.",
        examples=["http://10.0.0.5:9478"],
    )
    callback_listen: HostPort | None = Field(
        default=None,
        description="HOST:PORT on which the agent listens for those announcements.",
        examples=["0.0.0.0:9478"],
    )
    watches: tuple[WatchConfig, ...] = Field(default=(), description="The watched folders.")


class ConfigFile(ServiceSettings):
    """The configuration file as written."""

    nodes: tuple[NodeEntry, ...] = Field(
        description="The processing nodes (at least one; the loader checks the count so"
        " that a bad entry is not also reported as a missing one)."
    )


class AgentConfig(ServiceSettings):
    """The loaded configuration: absolute paths, nodes with tokens, presets resolved."""

    nodes: tuple[NodeConfig, ...] = Field(min_length=1, description="The processing nodes.")
    config_path: Path = Field(description="Absolute path of the file this was loaded from.")
    presets: Mapping[str, dict[str, object]] = Field(
        default_factory=dict,
        description="Every preset in presets_dir by name, with extends applied.",
    )

    def node(self, name: str) -> NodeConfig:
        """Given a node name, return that node. Raise KeyError when there is none."""
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(name)

    def watch(self, name: str) -> WatchConfig:
        """Given a watch name, return that watch. Raise KeyError when there is none."""
        for watch in self.watches:
            if watch.name == name:
                return watch
        raise KeyError(name)


def known_keys() -> dict[tuple[str | int, ...], tuple[str, ...]]:
    """Return the keys allowed in each section of the file, for "did you mean" hints."""
    return {
        (): tuple(ConfigFile.model_fields),
        ("nodes",): tuple(NodeEntry.model_fields),
        ("watches",): tuple(WatchConfig.model_fields),
        ("watches", "ready"): tuple(ReadyConfig.model_fields),
        ("watches", "notify"): tuple(NotifyConfig.model_fields),
        ("notify",): tuple(NotifyConfig.model_fields),
        ("metrics",): tuple(MetricsConfig.model_fields),
        ("log",): tuple(LogConfig.model_fields),
    }
