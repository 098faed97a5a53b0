"""JavaScript-flavoured value handling for the simulated NodeODX node.

NodeODX is a Node.js program: its error texts embed values the way JavaScript prints
them (``NaN``, ``2`` for 2.0, ``[object Object]``) and its JSON parse errors read like
V8's. The simulated node reproduces those texts so clients see byte-identical answers.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

_NUMBER_PREFIX = re.compile(r"^[+-]?(\d+\.?\d*(e[+-]?\d+)?|\.\d+(e[+-]?\d+)?)", re.IGNORECASE)
_INTEGER_PREFIX = re.compile(r"^[+-]?\d+")


def dump_json(value: Any) -> bytes:
    """Given a JSON-compatible value, return it serialised compactly as Node.js does."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def js_number(value: float) -> float | int:
    """Given a number, return it as an int when integral so JSON prints ``2``, not ``2.0``."""
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    return value


def js_string(value: Any) -> str:
    """Given a decoded JSON value, return the text JavaScript's String(value) produces."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return str(js_number(value))
    if isinstance(value, list):
        return ",".join("" if item is None else js_string(item) for item in value)
    if isinstance(value, dict):
        return "[object Object]"
    return str(value)


def parse_float(value: Any) -> float:
    """Given a decoded JSON value, return what JavaScript's Number.parseFloat gives."""
    text = js_string(value).lstrip()
    for word, number in (("Infinity", math.inf), ("+Infinity", math.inf), ("-Infinity", -math.inf)):
        if text.startswith(word):
            return number
    match = _NUMBER_PREFIX.match(text)
    return float(match.group(0)) if match else math.nan


def parse_int(value: Any) -> float:
    """Given a decoded JSON value, return what JavaScript's Number.parseInt gives (NaN as
    a float when no digits lead the text)."""
    match = _INTEGER_PREFIX.match(js_string(value).lstrip())
    return float(int(match.group(0))) if match else math.nan


def parse_json(text: str) -> Any:
    """Given a JSON text, return its value. Raise ValueError with a V8-style message (the
    wording JSON.parse uses in Node.js) when the text is not valid JSON."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(_v8_message(text, error)) from None


def _v8_message(text: str, error: json.JSONDecodeError) -> str:
    position = error.pos
    reason = error.msg
    if position >= len(text.rstrip()) and reason.startswith(("Expecting", "Unterminated")):
        return "Unexpected end of JSON input"
    if reason.startswith("Expecting property name"):
        return f"Expected property name or '}}' in JSON at position {position}"
    if reason == "Expecting ':' delimiter":
        return f"Expected ':' after property name in JSON at position {position}"
    if reason == "Expecting ',' delimiter":
        closing = "}" if _innermost_open(text, position) == "{" else "]"
        after = "property value" if closing == "}" else "array element"
        return f"Expected ',' or '{closing}' after {after} in JSON at position {position}"
    if reason == "Extra data":
        return f"Unexpected non-whitespace character after JSON at position {position}"
    if reason.startswith("Unterminated string"):
        return f"Unterminated string in JSON at position {len(text)}"
    character = text[position] if position < len(text) else ""
    return f"Unexpected token '{character}', \"{text[:30]}\" is not valid JSON"


def _innermost_open(text: str, position: int) -> str:
    depth: list[str] = []
    in_string = False
    escaped = False
    for character in text[:position]:
        if in_string:
            previous_was_escape = escaped
            escaped = not previous_was_escape and character == "\\"
            in_string = previous_was_escape or character != '"'
        elif character == '"':
            in_string = True
        elif character in "{[":
            depth.append(character)
        elif character in "}]" and depth:
            depth.pop()
    return depth[-1] if depth else "{"
