"""What every piece of daemon work needs at hand: config, store, nodes, metrics, clock."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from odx_agent.agent.lifecycle import Lifecycle
from odx_agent.agent.nodes import NodePool
from odx_agent.config import AgentConfig, WatchConfig
from odx_agent.metrics import AgentMetrics
from odx_agent.store import Store


@dataclass
class Runtime:
    config: AgentConfig
    store: Store
    nodes: NodePool
    metrics: AgentMetrics
    lifecycle: Lifecycle
    clock: Callable[[], float]
    stopping: threading.Event = field(default_factory=threading.Event)
    # drops an operator canceled while work on them runs: the work checks and stops
    canceled: set[int] = field(default_factory=set)
    # watches removed by a reload: their drops in flight finish with these settings
    retired: dict[str, WatchConfig] = field(default_factory=dict)
    callback: Callable[[str], str | None] = lambda task_uuid: None

    def watch(self, name: str) -> WatchConfig | None:
        for watch in self.config.watches:
            if watch.name == name:
                return watch
        return self.retired.get(name)

    def interrupted(self, drop_id: int) -> bool:
        return self.stopping.is_set() or drop_id in self.canceled
