"""Job tickets: an optional ``odx.yaml`` inside a drop that adjusts how it is processed.

A ticket may name another preset (replacing the watch's), add single options on top of
the preset, and give the task a title. Tickets are written by field teams, so they are
read with a size limit and without YAML aliases.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import Field, StrictStr, ValidationError

from .errors import ConfigError, problem_line, show_value
from .options import option_problems
from .presets import describe_known
from .sections import Section
from .translate import pydantic_lines
from .yamlfile import read_yaml

if TYPE_CHECKING:
    from .schema import AgentConfig
    from .sections import WatchConfig

TICKET_NAME = "odx.yaml"
MAX_TICKET_BYTES = 64 * 1024


class Ticket(Section):
    """A drop's job ticket."""

    preset: StrictStr | None = Field(
        default=None, description="Preset used instead of the watch's preset."
    )
    options: dict[str, object] = Field(
        default_factory=dict, description="Single options applied on top of the preset."
    )
    name: StrictStr | None = Field(
        default=None, max_length=200, description="Title given to the task on the node."
    )


def load_ticket(
    path: Path,
    known_presets: Collection[str],
    *,
    node_options: Sequence[object] | None = None,
) -> Ticket:
    """Given the path of a drop's odx.yaml and the preset names, return its Ticket.

    With ``node_options`` (the node's option list) the ticket's options are checked too.
    Raise ConfigError listing every problem, each line starting ``<drop>/odx.yaml:``.
    """
    shown = f"{path.parent.name}/{path.name}"
    data = read_yaml(path, shown, allow_aliases=False, max_bytes=MAX_TICKET_BYTES)
    if data is None:
        return Ticket()
    if not isinstance(data, dict):
        raise ConfigError([f"{shown}: must be a mapping of keys to values, not {show_value(data)}"])
    lines: list[str] = []
    try:
        ticket = Ticket.model_validate(data)
    except ValidationError as error:
        raise ConfigError(
            pydantic_lines(shown, error, known_keys={(): tuple(Ticket.model_fields)})
        ) from None
    if ticket.preset is not None and ticket.preset not in known_presets:
        lines.append(
            problem_line(
                shown,
                ["preset"],
                f"unknown preset {ticket.preset!r} {describe_known(known_presets)}",
            )
        )
    for key, value in ticket.options.items():
        if not isinstance(key, str) or not key:
            lines.append(
                problem_line(shown, ["options"], f"{show_value(key)} is not an option name")
            )
        elif value is None:
            lines.append(problem_line(shown, ["options", key], "null is not an option value"))
    if node_options is not None and not lines:
        for name, problem in option_problems(ticket.options, node_options):
            lines.append(problem_line(shown, ["options", name], problem))
    if lines:
        raise ConfigError(lines)
    return ticket


def effective_options(
    config: AgentConfig, watch: WatchConfig, ticket: Ticket | None
) -> dict[str, object]:
    """Given the config, a watch and a drop's ticket, return the options to send.

    The ticket's preset replaces the watch's; the ticket's options go on top. Raise
    ConfigError when the chosen preset is not among the loaded presets.
    """
    preset = ticket.preset if ticket is not None and ticket.preset is not None else watch.preset
    options: dict[str, object] = {}
    if preset is not None:
        if preset not in config.presets:
            known = describe_known(config.presets)
            raise ConfigError([f"{watch.name}: preset: unknown preset {preset!r} {known}"])
        options.update(config.presets[preset])
    if ticket is not None:
        options.update(ticket.options)
    return options
