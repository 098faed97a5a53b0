"""Every broken configuration in tests/data/bad-configs is refused with exactly its lines.

Each case folder holds an agent.yaml (plus presets, token files and drop folders as it
needs) and expected.txt. ``<case>`` in expected.txt stands for the case folder's resolved
path. A case with a drop ticket (``odx.yaml``) has a valid config; its ticket is what fails.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from odx_agent.config import ConfigError, load_config, load_ticket

REPOSITORY = Path(__file__).resolve().parents[3]
CORPUS = REPOSITORY / "tests" / "data" / "bad-configs"
OPTIONS = json.loads((REPOSITORY / "odx_agent/simnode/data/options.json").read_text())
SECRET = "s3cr3t-token"
CASES = sorted(path.name for path in CORPUS.iterdir() if path.is_dir())
CONFIG_CASES = [name for name in CASES if not any((CORPUS / name).rglob("odx.yaml"))]
TICKET_CASES = [name for name in CASES if name not in CONFIG_CASES]


def expected_lines(case: Path) -> list[str]:
    text = (case / "expected.txt").read_text(encoding="utf-8")
    return [line.replace("<case>", str(case.resolve())) for line in text.splitlines()]


def clean_environment() -> dict[str, str]:
    """The process environment without the variables the cases rely on being unset."""
    return {name: value for name, value in os.environ.items() if not name.startswith("ODX_TEST_")}


def test_corpus_is_large_enough() -> None:
    assert len(CASES) >= 18
    for name in CASES:
        assert (CORPUS / name / "expected.txt").is_file(), name


@pytest.mark.parametrize("name", CONFIG_CASES)
def test_load_config_reports_exactly_the_expected_lines(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    case = CORPUS / name
    monkeypatch.chdir(case)
    with pytest.raises(ConfigError) as caught:
        load_config(Path("agent.yaml"), environ=clean_environment())
    assert caught.value.lines == expected_lines(case)
    assert str(caught.value) == "\n".join(expected_lines(case))
    assert SECRET not in str(caught.value)


@pytest.mark.parametrize("name", TICKET_CASES)
def test_load_ticket_reports_exactly_the_expected_lines(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    case = CORPUS / name
    monkeypatch.chdir(case)
    config = load_config(Path("agent.yaml"), environ=clean_environment())
    (ticket,) = case.rglob("odx.yaml")
    with pytest.raises(ConfigError) as caught:
        load_ticket(ticket, config.presets, node_options=OPTIONS)
    assert caught.value.lines == expected_lines(case)


@pytest.mark.parametrize("name", CONFIG_CASES)
def test_check_config_command_exits_2_with_the_expected_lines(name: str) -> None:
    if not (REPOSITORY / "odx_agent" / "__main__.py").exists():
        pytest.skip("odx_agent/__main__.py does not exist yet: no `python -m odx_agent` to run")
    case = CORPUS / name
    result = subprocess.run(
        [sys.executable, "-m", "odx_agent", "check-config", "-c", "agent.yaml"],
        cwd=case,
        env=clean_environment(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == expected_lines(case)
    assert SECRET not in result.stderr + result.stdout
