"""Job tickets and the options a drop is finally submitted with."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from odx_agent.config import ConfigError, Ticket, effective_options, load_config, load_ticket

REPOSITORY = Path(__file__).resolve().parents[3]
OPTIONS = json.loads((REPOSITORY / "odx_agent/simnode/data/options.json").read_text())


def drop_with_ticket(tmp_path: Path, text: str) -> Path:
    drop = tmp_path / "ingest" / "field-7"
    drop.mkdir(parents=True, exist_ok=True)
    ticket = drop / "odx.yaml"
    ticket.write_bytes(text.encode("utf-8"))
    return ticket


def test_a_full_ticket_loads(tmp_path: Path) -> None:
    ticket_path = drop_with_ticket(
        tmp_path, "name: North slope\npreset: dsm\noptions:\n  dsm: true\n  mesh-size: 100000\n"
    )
    ticket = load_ticket(ticket_path, {"dsm", "fast"}, node_options=OPTIONS)
    assert ticket == Ticket(
        name="North slope", preset="dsm", options={"dsm": True, "mesh-size": 100000}
    )


def test_an_empty_ticket_changes_nothing(tmp_path: Path) -> None:
    assert load_ticket(drop_with_ticket(tmp_path, "# nothing\n"), set()) == Ticket()


def test_ticket_problems_are_all_reported_with_the_drop_name(tmp_path: Path) -> None:
    ticket_path = drop_with_ticket(tmp_path, "preset: nope\noptions:\n  dsm: maybe\n  gpu: true\n")
    with pytest.raises(ConfigError) as caught:
        load_ticket(ticket_path, ["dsm"], node_options=OPTIONS)
    assert caught.value.lines == ["field-7/odx.yaml: preset: unknown preset 'nope' (known: dsm)"]
    ticket_path.write_text("options:\n  dsm: maybe\n  gpu: true\n  min-num-features: 1.5\n")
    with pytest.raises(ConfigError) as caught:
        load_ticket(ticket_path, ["dsm"], node_options=OPTIONS)
    assert caught.value.lines == [
        "field-7/odx.yaml: options.dsm: 'maybe' is not a boolean (true or false)",
        "field-7/odx.yaml: options.gpu: unknown option",
        "field-7/odx.yaml: options.min-num-features: 1.5 is not an integer",
    ]


def test_ticket_shape_errors(tmp_path: Path) -> None:
    path = drop_with_ticket(tmp_path, "- a list\n")
    with pytest.raises(ConfigError) as caught:
        load_ticket(path, [])
    assert caught.value.lines == [
        "field-7/odx.yaml: must be a mapping of keys to values, not a list"
    ]
    path.write_text("options: [dsm]\nname: 5\n")
    with pytest.raises(ConfigError) as caught:
        load_ticket(path, [])
    assert caught.value.lines == [
        "field-7/odx.yaml: options: a list is not a mapping of keys to values",
        "field-7/odx.yaml: name: 5 is not text",
    ]


def test_oversized_tickets_are_refused_unread(tmp_path: Path) -> None:
    path = drop_with_ticket(tmp_path, "name: x\n" + "#" * 70_000 + "\n")
    with pytest.raises(ConfigError) as caught:
        load_ticket(path, [])
    assert caught.value.lines == ["field-7/odx.yaml: file is larger than 65536 bytes"]


def test_effective_options_layer_preset_then_ticket(tmp_path: Path) -> None:
    presets = tmp_path / "presets"
    presets.mkdir()
    (presets / "fast.yaml").write_text("fast-orthophoto: true\ndsm: false\n")
    (presets / "dsm.yaml").write_text("dsm: true\ndtm: true\n")
    (tmp_path / "ingest").mkdir()
    (tmp_path / "agent.yaml").write_text(
        "state_file: s.sqlite\npresets_dir: presets\nnodes: [{url: 'http://127.0.0.1:3000'}]\n"
        "watches:\n  - {name: a, path: ingest, output: out, preset: fast}\n"
        "  - {name: b, path: ingest/b, output: out-b}\n"
    )
    (tmp_path / "ingest" / "b").mkdir()
    with pytest.raises(ConfigError):  # b lies inside a
        load_config(tmp_path / "agent.yaml")
    (tmp_path / "agent.yaml").write_text(
        "state_file: s.sqlite\npresets_dir: presets\nnodes: [{url: 'http://127.0.0.1:3000'}]\n"
        "watches:\n  - {name: a, path: ingest, output: out, preset: fast}\n"
    )
    config = load_config(tmp_path / "agent.yaml")
    watch = config.watches[0]
    assert effective_options(config, watch, None) == {"fast-orthophoto": True, "dsm": False}
    assert effective_options(config, watch, Ticket(options={"dsm": True})) == {
        "fast-orthophoto": True,
        "dsm": True,
    }
    assert effective_options(config, watch, Ticket(preset="dsm", options={"dtm": False})) == {
        "dsm": True,
        "dtm": False,
    }
    with pytest.raises(ConfigError, match="unknown preset 'gone'"):
        effective_options(config, watch, Ticket(preset="gone"))
    assert config.presets["fast"] == {"fast-orthophoto": True, "dsm": False}  # not changed
