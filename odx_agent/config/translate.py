"""Turn pydantic's validation errors into plain report lines.

pydantic speaks of ``int_parsing`` and ``extra_forbidden``; a person editing a YAML file
wants "required", "unknown key" and a sentence that shows the value they wrote.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from .errors import problem_line, show_value

_TYPE_SENTENCES = {
    "int_type": "{value} is not a whole number",
    "int_parsing": "{value} is not a whole number",
    "int_from_float": "{value} is not a whole number",
    "float_type": "{value} is not a number",
    "float_parsing": "{value} is not a number",
    "bool_type": "{value} is not true or false",
    "bool_parsing": "{value} is not true or false",
    "string_type": "{value} is not text",
    "path_type": "{value} is not a path",
    "tuple_type": "{value} is not a list",
    "list_type": "{value} is not a list",
    "dict_type": "{value} is not a mapping of keys to values",
    "model_type": "{value} is not a mapping of keys to values",
    "model_attributes_type": "{value} is not a mapping of keys to values",
    "none_required": "{value} is not null",
}


def pydantic_lines(
    file: str,
    error: ValidationError,
    prefix: Sequence[str | int] = (),
    known_keys: Mapping[tuple[str | int, ...], Collection[str]] | None = None,
) -> list[str]:
    """Given a pydantic ValidationError, return one report line per problem.

    ``prefix`` is put before every location (for a section validated on its own);
    ``known_keys`` maps a location without list indexes to the keys allowed there, so an
    unknown key can suggest the one probably meant.
    """
    lines = []
    for detail in error.errors(include_url=False):
        location = tuple(prefix) + _clean_location(detail["loc"])
        message = _message(detail, location, known_keys or {})
        line = problem_line(file, location, message)
        if line not in lines:
            lines.append(line)
    return lines


def _clean_location(location: tuple[str | int, ...]) -> tuple[str | int, ...]:
    """Drop the parts pydantic adds for its own validators (``function-after[...]``)."""
    return tuple(part for part in location if isinstance(part, int) or ("[" not in part and part))


def _message(
    detail: ErrorDetails,
    location: tuple[str | int, ...],
    known_keys: Mapping[tuple[str | int, ...], Collection[str]],
) -> str:
    """Given one pydantic error, return the sentence to show for it."""
    kind = detail["type"]
    value: Any = detail.get("input")
    context: dict[str, Any] = dict(detail.get("ctx") or {})
    if kind == "missing":
        return "required"
    if kind == "extra_forbidden":
        return _unknown_key(location, known_keys)
    if kind in _TYPE_SENTENCES:
        return _TYPE_SENTENCES[kind].format(value=show_value(value))
    if kind == "literal_error":
        expected = str(context.get("expected", "")).replace(" or ", ", ").replace("'", "")
        return f"{show_value(value)} is not one of {expected}"
    if kind == "enum":
        return f"{show_value(value)} is not one of {context.get('expected', '')}"
    if kind == "greater_than":
        return f"must be greater than {_bound(context['gt'])}, not {show_value(value)}"
    if kind == "greater_than_equal":
        return f"must be at least {_bound(context['ge'])}, not {show_value(value)}"
    if kind == "less_than_equal":
        return f"must be at most {_bound(context['le'])}, not {show_value(value)}"
    if kind in ("too_short", "too_long"):
        return _length_message(kind, context)
    if kind == "value_error":
        return str(context.get("error", detail["msg"]))
    if kind == "finite_number":
        return f"{show_value(value)} is not a finite number"
    return f"{detail['msg'][0].lower()}{detail['msg'][1:]} (got {show_value(value)})"


def _bound(limit: object) -> str:
    """Return a limit as a person writes it: 0 rather than 0.0."""
    if isinstance(limit, float) and limit.is_integer():
        return str(int(limit))
    return str(limit)


def _unknown_key(
    location: tuple[str | int, ...], known_keys: Mapping[tuple[str | int, ...], Collection[str]]
) -> str:
    """Return "unknown key", with the closest allowed key when one is near enough."""
    section = tuple(part for part in location[:-1] if not isinstance(part, int))
    allowed = known_keys.get(section, ())
    typed = str(location[-1]) if location else ""
    close = difflib.get_close_matches(typed, list(allowed), n=1, cutoff=0.7)
    return f"unknown key (did you mean '{close[0]}'?)" if close else "unknown key"


def _length_message(kind: str, context: dict[str, Any]) -> str:
    """Return the sentence for a list that is too short or too long."""
    if kind == "too_short":
        needed = context.get("min_length", 1)
        return f"needs at least {needed} {'entry' if needed == 1 else 'entries'}"
    return f"allows at most {context.get('max_length')} entries"
