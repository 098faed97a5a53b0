"""Check NodeODX option values against the node's own option list before submitting.

The node drops unknown option names without a word and refuses a bad value only once the
task is created; checking first turns a typo in a preset or a ticket into a clear message.
The rules follow the node's domains: ``positive`` means zero or more, as the node reads it.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .errors import show_value

_COMPARISON = re.compile(r"^(?P<kind>integer|float)\s*(?P<op>>=|>|<=|<)\s*(?P<bound>[-+.\d]+)$")
_RANGE = re.compile(
    r"^(?P<kind>integer|float):\s*(?P<low>[-+.\d]+)\s*<=\s*x\s*<=\s*(?P<high>[-+.\d]+)$"
)
_SIGNED = re.compile(r"^(?:(?P<sign>positive|negative)\s+)?(?P<kind>integer|float)$")


@dataclass(frozen=True)
class OptionSpec:
    """What the node says about one option: its name, type, default and domain."""

    name: str
    type: str
    value: object
    domain: object


def option_spec(option: object) -> OptionSpec:
    """Given a client NodeOption or a dict from ``GET /options``, return its OptionSpec."""
    if isinstance(option, Mapping):
        fields = {key: option.get(key) for key in ("name", "type", "value", "domain")}
    else:
        fields = {key: getattr(option, key, None) for key in ("name", "type", "value", "domain")}
    return OptionSpec(
        name=str(fields["name"]),
        type=str(fields["type"] or ""),
        value=fields["value"],
        domain=fields["domain"] if fields["domain"] is not None else "",
    )


def option_problems(
    options: Mapping[str, object], node_options: Sequence[object]
) -> list[tuple[str, str]]:
    """Given options and the node's option list, return (option name, problem) pairs."""
    specs = {spec.name: spec for spec in map(option_spec, node_options)}
    problems = []
    for name, value in options.items():
        spec = specs.get(name)
        if spec is None:
            close = difflib.get_close_matches(name, list(specs), n=1, cutoff=0.75)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            problems.append((name, f"unknown option{hint}"))
            continue
        problem = value_problem(spec, value)
        if problem:
            problems.append((name, problem))
    return problems


def validate_options(options: Mapping[str, object], node_options: Sequence[object]) -> list[str]:
    """Given options and the node's option list, return one message per problem.

    Each message names the option, the value and what is allowed, e.g.
    ``option 'dsm': 'maybe' is not a boolean (true or false)``. An empty list means the
    options may be sent as they are.
    """
    messages = []
    for name, problem in option_problems(options, node_options):
        if problem.startswith("unknown option"):
            messages.append(f"unknown option {name!r}{problem.removeprefix('unknown option')}")
        else:
            messages.append(f"option {name!r}: {problem}")
    return messages


def value_problem(spec: OptionSpec, value: object) -> str | None:
    """Given an option's spec and a value, return what is wrong with it, or None."""
    shown = show_value(value)
    if isinstance(spec.domain, list | tuple):
        allowed = [str(choice) for choice in spec.domain]
        text = _as_text(value)
        if text is None or text not in allowed:
            listed = ", ".join(choice if choice else "''" for choice in allowed)
            return f"{shown} is not one of {listed}"
        return None
    domain = str(spec.domain).strip()
    if spec.type == "bool":
        return None if _as_bool(value) is not None else f"{shown} is not a boolean (true or false)"
    if domain == "json":
        return None if _is_json(value) else f"{shown} is not valid JSON"
    number_domain = _number_domain(domain, spec.type)
    if number_domain is not None:
        return _number_problem(value, shown, domain, spec.type)
    if spec.type == "string" or domain in ("string", "path"):
        return None if _as_text(value) is not None else f"{shown} is not a string"
    return None  # a domain this agent does not know yet: leave the judgement to the node


def _number_domain(domain: str, option_type: str) -> str | None:
    """Return the domain when it describes numbers (or the type does), else None."""
    if _SIGNED.match(domain) or _COMPARISON.match(domain) or _RANGE.match(domain):
        return domain
    if domain == "percent" or option_type in ("int", "float"):
        return domain
    return None


def _number_problem(value: object, shown: str, domain: str, option_type: str) -> str | None:
    """Check a number against the option's type and a numeric domain."""
    number = _as_number(value)
    wants_integer = option_type == "int" or (option_type != "float" and "integer" in domain)
    described = domain or ("integer" if wants_integer else "float")
    article = "an" if described[0] in "aeiou" else "a"
    failure = f"{shown} is not {article} {described}"
    if number is None or (wants_integer and not float(number).is_integer()):
        return failure
    if (signed := _SIGNED.match(domain)) is not None:
        sign = signed["sign"]
        ok = sign is None or (number >= 0 if sign == "positive" else number <= 0)
    elif (compared := _COMPARISON.match(domain)) is not None:
        bound = float(compared["bound"])
        ok = {
            ">": number > bound,
            ">=": number >= bound,
            "<": number < bound,
            "<=": number <= bound,
        }[compared["op"]]
    elif (ranged := _RANGE.match(domain)) is not None:
        ok = float(ranged["low"]) <= number <= float(ranged["high"])
        failure = (
            f"{shown} is not {article} {ranged['kind']} from {ranged['low']} to {ranged['high']}"
        )
    elif domain == "percent":
        ok = 0 <= number <= 100
    else:
        ok = True
    return None if ok else failure


def _as_number(value: object) -> float | None:
    """Return a finite number from a YAML number or numeric text, else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def _as_bool(value: object) -> bool | None:
    """Return a boolean from a YAML boolean or the text true/false, else None."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return None


def _as_text(value: object) -> str | None:
    """Return the text the node would receive for a scalar, else None."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    return None


def _is_json(value: object) -> bool:
    """Tell whether a value is JSON text, or a mapping or list that can be sent as JSON."""
    if isinstance(value, dict | list):
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            return False
        return True
    if isinstance(value, str):
        if not value.strip():
            return True  # the node's own default for its JSON options: nothing given
        try:
            json.loads(value)
        except ValueError:
            return False
        return True
    return False
