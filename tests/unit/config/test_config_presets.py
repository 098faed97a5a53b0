"""Presets: extends chains, overrides, cycles, unknown parents, malformed files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from odx_agent.config import ConfigError, load_presets, resolve_preset, validate_options
from odx_agent.config.presets import PresetError

REPOSITORY = Path(__file__).resolve().parents[3]


def write_presets(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def test_extends_applies_the_parent_first_through_a_chain() -> None:
    raw = {
        "base": {"dsm": False, "feature-quality": "low"},
        "middle": {"extends": "base", "dsm": True, "pc-quality": "low"},
        "top": {"extends": "middle", "pc-quality": "high"},
    }
    assert resolve_preset("top", raw) == {
        "dsm": True,
        "feature-quality": "low",
        "pc-quality": "high",
    }
    assert resolve_preset("base", raw) == {"dsm": False, "feature-quality": "low"}


def test_resolve_preset_names_the_cycle_from_its_smallest_member() -> None:
    raw = {
        "b": {"extends": "c"},
        "c": {"extends": "a"},
        "a": {"extends": "b"},
        "d": {"extends": "b"},
    }
    with pytest.raises(PresetError) as caught:
        resolve_preset("d", raw)
    assert str(caught.value) == "extends: cycle a -> b -> c -> a"
    assert caught.value.preset == "a"


def test_resolve_preset_refuses_unknown_names() -> None:
    with pytest.raises(PresetError, match=r"^unknown preset 'x' \(known: a\)$"):
        resolve_preset("x", {"a": {}})
    with pytest.raises(PresetError, match=r"^extends: unknown preset 'y' \(known: a\)$"):
        resolve_preset("a", {"a": {"extends": "y"}})


def test_load_presets_reads_every_yaml_file_and_ignores_the_rest(tmp_path: Path) -> None:
    folder = write_presets(
        tmp_path / "presets",
        {
            "fast.yaml": "# quick\nfast-orthophoto: true\n",
            "dsm.yaml": "extends: fast\ndsm: true\n",
            "empty.yaml": "",
            ".hidden.yaml": "not: [valid\n",
            "notes.txt": "not a preset",
        },
    )
    assert load_presets(folder) == {
        "fast": {"fast-orthophoto": True},
        "dsm": {"fast-orthophoto": True, "dsm": True},
        "empty": {},
    }


def test_load_presets_reports_every_broken_file(tmp_path: Path) -> None:
    folder = write_presets(
        tmp_path / "presets",
        {
            "a.yaml": "extends: b\n",
            "b.yaml": "extends: a\n",
            "bad.yaml": "dsm: [true\n",
            "child.yaml": "extends: bad\n",
            "scalar.yaml": "just text\n",
        },
    )
    with pytest.raises(ConfigError) as caught:
        load_presets(folder, shown_dir="presets")
    assert caught.value.lines == [
        "presets/bad.yaml: line 2, column 1: expected ',' or ']', but got '<stream end>'",
        "presets/scalar.yaml: must map option names to values, not 'just text'",
        "presets/a.yaml: extends: cycle a -> b -> a",
    ]


def test_a_missing_presets_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_presets(tmp_path / "nowhere")
    assert caught.value.lines == [f"{tmp_path / 'nowhere'}: presets folder does not exist"]


def test_sample_presets_are_valid_for_the_node() -> None:
    options = json.loads((REPOSITORY / "odx_agent/simnode/data/options.json").read_text())
    presets = load_presets(REPOSITORY / "config" / "presets")
    assert set(presets) == {"dsm", "high-quality", "ortho-fast"}
    for name, preset in presets.items():
        assert validate_options(preset, options) == [], name
