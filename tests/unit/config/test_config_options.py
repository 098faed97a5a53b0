"""validate_options against the node's own option list (every domain it uses)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from odx_agent.config import validate_options

REPOSITORY = Path(__file__).resolve().parents[3]
OPTIONS = json.loads((REPOSITORY / "odx_agent/simnode/data/options.json").read_text())


@dataclass
class NodeOptionLike:
    """Shaped like the client's NodeOption: attributes, not keys."""

    name: str
    type: str
    value: str
    domain: object


def test_every_default_the_node_announces_is_valid() -> None:
    defaults = {option["name"]: option["value"] for option in OPTIONS}
    assert validate_options(defaults, OPTIONS) == []


def test_every_domain_in_the_recorded_option_list_is_understood() -> None:
    understood = {
        "",
        "positive float",
        "positive integer",
        "integer",
        "float",
        "float > 0.0",
        "integer: 1 <= x <= 14",
        "string",
        "json",
    }
    domains = {option["domain"] for option in OPTIONS if isinstance(option["domain"], str)}
    assert domains <= understood


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"orthophoto-resolutoin": 2},
            "unknown option 'orthophoto-resolutoin' (did you mean 'orthophoto-resolution'?)",
        ),
        ({"gpu": True}, "unknown option 'gpu'"),
        (
            {"feature-quality": "superb"},
            "option 'feature-quality': 'superb' is not one of ultra, high, medium, low, lowest",
        ),
        (
            {"orthophoto-resolution": "abc"},
            "option 'orthophoto-resolution': 'abc' is not a float > 0.0",
        ),
        ({"orthophoto-resolution": 0}, "option 'orthophoto-resolution': 0 is not a float > 0.0"),
        ({"crop": "abc"}, "option 'crop': 'abc' is not a positive float"),
        ({"crop": -1}, "option 'crop': -1 is not a positive float"),
        ({"crop": ".nan"}, "option 'crop': '.nan' is not a positive float"),
        ({"dsm": "maybe"}, "option 'dsm': 'maybe' is not a boolean (true or false)"),
        ({"dsm": 1}, "option 'dsm': 1 is not a boolean (true or false)"),
        ({"mesh-size": 2.5}, "option 'mesh-size': 2.5 is not a positive integer"),
        ({"mesh-size": -3}, "option 'mesh-size': -3 is not a positive integer"),
        ({"mesh-size": True}, "option 'mesh-size': true is not a positive integer"),
        ({"min-num-features": "ten"}, "option 'min-num-features': 'ten' is not an integer"),
        ({"dem-resolution": [1]}, "option 'dem-resolution': a list is not a float"),
        (
            {"mesh-octree-depth": 15},
            "option 'mesh-octree-depth': 15 is not an integer from 1 to 14",
        ),
        ({"mesh-octree-depth": 0}, "option 'mesh-octree-depth': 0 is not an integer from 1 to 14"),
        ({"cameras": "{not json"}, "option 'cameras': '{not json' is not valid JSON"),
        ({"sm-cluster": {"a": 1}}, "option 'sm-cluster': a mapping is not a string"),
        (
            {"rerun-from": "x"},
            "option 'rerun-from': 'x' is not one of '', dataset, split,"
            " merge, opensfm, openmvs, odm_filterpoints, odm_meshing, mvs_texturing,"
            " odm_georeferencing, odm_dem, odm_orthophoto, odm_report, odm_postprocess",
        ),
    ],
)
def test_each_bad_value_is_named_with_what_is_allowed(
    options: dict[str, object], message: str
) -> None:
    assert validate_options(options, OPTIONS) == [message]


@pytest.mark.parametrize(
    "options",
    [
        {"dsm": True, "dtm": "false", "fast-orthophoto": "TRUE"},
        {"orthophoto-resolution": 0.5, "crop": 0},
        {"mesh-size": "200000", "min-num-features": -5, "dem-resolution": -1.5},
        {"mesh-octree-depth": 14, "split-overlap": 150.5},
        {"feature-quality": "ultra", "rerun-from": ""},
        {"cameras": {"camera": {"focal": 0.8}}, "boundary": '{"type": "Polygon"}'},
        {"sm-cluster": "http://cluster:3000", "primary-band": 5},
    ],
)
def test_good_values_pass(options: dict[str, object]) -> None:
    assert validate_options(options, OPTIONS) == []


def test_node_option_objects_work_like_dicts() -> None:
    objects = [
        NodeOptionLike(option["name"], option["type"], option["value"], option["domain"])
        for option in OPTIONS
    ]
    options = {"dsm": "maybe", "mesh-octree-depth": 20, "fast-orthophoto": True}
    assert validate_options(options, objects) == validate_options(options, OPTIONS)
    assert len(validate_options(options, objects)) == 2


def test_unknown_domains_are_left_to_the_node() -> None:
    future = [{"name": "new-thing", "type": "string", "value": "", "domain": "colour"}]
    percent = [{"name": "share", "type": "float", "value": "0", "domain": "percent"}]
    assert validate_options({"new-thing": "red"}, future) == []
    assert validate_options({"share": 101}, percent) == ["option 'share': 101 is not a percent"]
