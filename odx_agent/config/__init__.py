"""The agent's configuration: schema, loader, presets, job tickets and option checks.

``load_config`` is the one way in for every command. Everything it returns is frozen.
"""

from .errors import ConfigError
from .loader import load_config
from .nodes import NodeConfig
from .options import validate_options
from .presets import load_presets, resolve_preset
from .schema import AgentConfig
from .sections import LogConfig, MetricsConfig, NotifyConfig, ReadyConfig, WatchConfig
from .ticket import Ticket, effective_options, load_ticket

__all__ = [
    "AgentConfig",
    "ConfigError",
    "LogConfig",
    "MetricsConfig",
    "NodeConfig",
    "NotifyConfig",
    "ReadyConfig",
    "Ticket",
    "WatchConfig",
    "effective_options",
    "load_config",
    "load_presets",
    "load_ticket",
    "resolve_preset",
    "validate_options",
]
