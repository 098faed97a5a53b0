"""Checks made once when the daemon starts."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlparse

import structlog

from odx_agent.config import AgentConfig

log = structlog.get_logger(__name__)


def is_loopback(host: str) -> bool:
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def warn_about_plain_tokens(config: AgentConfig) -> None:
    """Warn when a token would cross the network in clear text (http to another host)."""
    for node in config.nodes:
        parts = urlparse(node.base_url)
        if node.token and parts.scheme == "http" and not is_loopback(parts.hostname or ""):
            log.warning(
                "the node token is sent over plain http to another host; use https",
                node=node.name,
                host=parts.hostname,
            )
