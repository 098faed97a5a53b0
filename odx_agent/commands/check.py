"""``check-config`` beyond the schema: presets and tickets against a node's options."""

from __future__ import annotations

from odx_agent.agent.nodes import make_client
from odx_agent.config import AgentConfig, ConfigError, load_ticket
from odx_agent.config.errors import problem_line
from odx_agent.config.options import option_problems
from odx_agent.drops import TICKET_NAME
from odx_agent.nodeodx import NodeOption
from odx_agent.nodeodx.exceptions import GenericError

PROBE_TIMEOUT_SECONDS = 5.0


def _node_options(config: AgentConfig) -> tuple[list[NodeOption] | None, list[str]]:
    notes: list[str] = []
    for node in config.nodes:
        client = make_client(node.base_url, node.token, timeout=PROBE_TIMEOUT_SECONDS)
        try:
            return client.options(), notes
        except GenericError as error:
            notes.append(f"node {node.name}: not checked against its options ({error})")
        finally:
            client.close()
    return None, notes


def check_against_nodes(config: AgentConfig) -> tuple[list[str], list[str]]:
    """Given a loaded config, check its presets and every drop's ticket against the first
    node that answers. Return (problems, notes): problem lines ``FILE: key: message``."""
    options, notes = _node_options(config)
    problems: list[str] = []
    if options is not None:
        presets_dir = config.presets_dir
        for name, values in sorted(config.presets.items()):
            shown = f"{presets_dir.name}/{name}.yaml" if presets_dir else f"{name}.yaml"
            problems += [
                problem_line(shown, [option], message)
                for option, message in option_problems(values, options)
            ]
    for watch in config.watches:
        try:
            tickets = sorted(watch.path.glob(f"*/{TICKET_NAME}"))
        except OSError:
            continue
        for ticket in tickets:
            try:
                load_ticket(ticket, config.presets, node_options=options)
            except ConfigError as error:
                problems += error.lines
    return problems, notes
