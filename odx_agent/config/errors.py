"""The configuration error type and the helpers that shape its lines.

Every problem becomes one line ``FILE: key.path: what is wrong`` so that a person can fix
all of them in one pass, and so that tests can compare exact text.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

_MAX_SHOWN_VALUE = 80


class ConfigError(Exception):
    """One or more problems in the configuration, a preset or a job ticket.

    ``lines`` holds one ``FILE: key.path: what is wrong`` line per problem; ``str()`` joins
    them with newlines.
    """

    def __init__(self, lines: Iterable[str]) -> None:
        self.lines: list[str] = list(lines)
        super().__init__("\n".join(self.lines))

    def __str__(self) -> str:
        return "\n".join(self.lines)


def key_path(location: Sequence[str | int]) -> str:
    """Given a location such as ``("watches", 1, "preset")``, return ``watches[1].preset``."""
    text = ""
    for part in location:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text


def problem_line(file: str, location: Sequence[str | int], message: str) -> str:
    """Given a file name, a key location and a message, return one report line.

    An empty location leaves the key part out (a problem with the whole file).
    """
    where = key_path(location)
    return f"{file}: {where}: {message}" if where else f"{file}: {message}"


def show_value(value: object) -> str:
    """Given a value read from YAML, return it the way a person would write it there."""
    if value is None:
        text = "null"
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str):
        text = repr(value)
    elif isinstance(value, dict):
        text = "a mapping"
    elif isinstance(value, list | tuple):
        text = "a list"
    else:
        text = str(value)
    if len(text) > _MAX_SHOWN_VALUE:
        text = text[: _MAX_SHOWN_VALUE - 3] + "..."
    return text
