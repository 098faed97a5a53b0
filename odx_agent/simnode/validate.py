"""Processing-option validation the way NodeODX does it at task init and restart.

Given the client's options (a JSON text or a decoded list of ``{"name", "value"}``), keep
the known ones in catalogue order with their values converted to the option's type, drop
unknown names silently, and refuse bad values with the node's exact error texts.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from functools import cache
from importlib import resources
from typing import Any

from odx_agent.simnode.jsvalues import js_number, js_string, parse_float, parse_int, parse_json

# The node adds these after the client's options unless the client set them.
DEFAULT_OPTIONS: tuple[tuple[str, bool], ...] = (("pc-ept", True), ("cog", True), ("gltf", True))


class OptionsError(ValueError):
    """The options were refused; the message is the node's error text."""


@cache
def catalogue_bytes() -> bytes:
    """Return the ``GET /options`` body: the packaged catalogue, compact as the node sends."""
    raw = resources.files("odx_agent.simnode").joinpath("data/options.json").read_bytes()
    return json.dumps(json.loads(raw), separators=(",", ":")).encode("utf-8")


@cache
def catalogue() -> tuple[dict[str, Any], ...]:
    """Return the option catalogue as decoded dictionaries, in the node's order."""
    return tuple(json.loads(catalogue_bytes()))


def filter_options(given: str | Sequence[Any] | None) -> list[dict[str, Any]]:
    """Given the client's options, return the accepted ones with converted values, in
    catalogue order. Raise OptionsError with the node's message on malformed JSON or any
    bad value (all bad values listed in one JSON text)."""
    if given is None or given == "":
        return []
    items = parse_json(given) if isinstance(given, str) else given
    if not isinstance(items, list):
        raise OptionsError("options.find is not a function")
    accepted: list[dict[str, Any]] = []
    errors: list[dict[str, str]] = []
    for option in catalogue():
        chosen = next(
            (
                item
                for item in items
                if isinstance(item, dict) and item.get("name") == option["name"]
            ),
            None,
        )
        if chosen is None:
            continue
        try:
            value = _convert(option, chosen.get("value"))
        except ValueError as error:
            errors.append({"name": option["name"], "error": str(error)})
            continue
        accepted.append({"name": option["name"], "value": value})
    if errors:
        raise OptionsError(json.dumps(errors, separators=(",", ":"), ensure_ascii=False))
    return accepted


def with_defaults(options: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Given accepted options, return them followed by the node's defaults not yet set."""
    names = {option["name"] for option in options}
    extra = [{"name": name, "value": value} for name, value in DEFAULT_OPTIONS if name not in names]
    return [*options, *extra]


def _convert(option: dict[str, Any], value: Any) -> Any:
    kind = option["type"]
    domain = option.get("domain")
    if kind == "bool":
        return _to_bool(value)
    if kind in ("int", "float"):
        number = parse_int(value) if kind == "int" else parse_float(value)
        if isinstance(domain, str) and domain and not _in_domain(domain, number):
            raise ValueError(f"Invalid value {js_string(number)} (out of range)")
        return js_number(number)
    text = js_string(value)
    if isinstance(domain, list) and text not in domain:
        raise ValueError(f"Invalid value {text} (not in enum)")
    if domain == "json":
        try:
            json.loads(text)
        except json.JSONDecodeError:
            raise ValueError(f"Invalid value {text} (not valid JSON)") from None
    return text


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return bool(value == "true")
    raise ValueError(f"Cannot convert {js_string(value)} to boolean")


_RANGE = re.compile(r"^(?:int|integer|float): ([-+.\d]+) <= x <= ([-+.\d]+)$")
_BOUND = re.compile(r"^(?:int|integer|float) (>=|>|<=|<) ([-+.\d]+)$")
_COMPARE: dict[str, Callable[[float, float], bool]] = {
    ">=": lambda a, b: a >= b,
    ">": lambda a, b: a > b,
    "<=": lambda a, b: a <= b,
    "<": lambda a, b: a < b,
}


def _in_domain(domain: str, number: float) -> bool:
    # NaN fails every comparison, which is how "abc" becomes "Invalid value NaN".
    if domain.startswith("positive "):
        return number >= 0
    if domain.startswith("negative "):
        return number <= 0
    if domain == "integer":
        return math.isfinite(number) and float(number).is_integer()
    if domain == "float":
        return math.isfinite(number)
    if domain == "percent":
        return 0 <= number <= 100
    if match := _RANGE.match(domain):
        return float(match.group(1)) <= number <= float(match.group(2))
    if match := _BOUND.match(domain):
        return _COMPARE[match.group(1)](number, float(match.group(2)))
    return not math.isnan(number)
