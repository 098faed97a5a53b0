"""The systemd unit: sandboxed to a low exposure score yet still able to do its job."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

SYSTEMD = Path(__file__).resolve().parents[2] / "systemd"
UNIT = SYSTEMD / "odx-agent.service"
SYSUSERS = SYSTEMD / "odx-agent.sysusers"
MAX_EXPOSURE = 2.0


def _directives(path: Path) -> dict[str, list[str]]:
    """Return every ``Key=value`` of the unit, by key, in order (comments left out)."""
    directives: dict[str, list[str]] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, _, value = line.partition("=")
        directives.setdefault(key.strip(), []).append(value.strip())
    return directives


def _analyze() -> str:
    found = shutil.which("systemd-analyze")
    if found is None:
        pytest.skip("systemd-analyze is not installed here")
    return found


def test_security_exposure_is_at_most_two(tmp_path: Path) -> None:
    analyze = _analyze()
    # The unit name in the report comes from the file name; copy so the path is simple.
    unit = tmp_path / UNIT.name
    shutil.copy(UNIT, unit)
    result = subprocess.run(
        [analyze, "security", "--offline=true", "--no-pager", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    match = re.search(r"Overall exposure level for odx-agent\.service: (\d+\.\d+)", result.stdout)
    assert match is not None, result.stdout + result.stderr
    assert float(match.group(1)) <= MAX_EXPOSURE


def test_unit_verifies_without_warnings(tmp_path: Path) -> None:
    analyze = _analyze()
    # verify insists that ExecStart= exists; the agent is not installed at /opt here,
    # so point it at a program that is and check everything else as written.
    unit = tmp_path / UNIT.name
    unit.write_text(
        UNIT.read_text().replace(
            "ExecStart=/opt/odx-agent/bin/odx-agent", f"ExecStart={shutil.which('true')}"
        )
    )
    result = subprocess.run(
        [analyze, "verify", "--man=no", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if "Failed to" in result.stderr and "odx-agent.service" not in result.stderr:
        pytest.skip(f"systemd-analyze verify cannot run here: {result.stderr.strip()}")
    assert (result.returncode, result.stderr) == (0, "")


def test_must_have_directives_are_present() -> None:
    directives = _directives(UNIT)
    expected = {
        "Type": ["notify"],
        "NotifyAccess": ["main"],
        "WatchdogSec": ["60"],
        "Restart": ["on-failure"],
        "RestartPreventExitStatus": ["2"],
        "ExecStart": ["/opt/odx-agent/bin/odx-agent run -c /etc/odx-agent/agent.yaml"],
        "ExecReload": ["/bin/kill -HUP $MAINPID"],
        "User": ["odx-agent"],
        "StateDirectory": ["odx-agent"],
        "ConfigurationDirectory": ["odx-agent"],
        "LoadCredential": ["nodeodx-token:/etc/odx-agent/nodeodx-token"],
        "UMask": ["0027"],
        "RestrictAddressFamilies": ["AF_UNIX AF_INET AF_INET6"],
        "NoNewPrivileges": ["yes"],
        "ProtectSystem": ["strict"],
    }
    for key, values in expected.items():
        assert directives.get(key) == values, key
    (read_write,) = directives["ReadWritePaths"]
    assert [path.lstrip("-") for path in read_write.split()] == ["/srv/ingest", "/srv/results"]


def test_nothing_cuts_the_agent_off_from_a_node_on_another_host() -> None:
    directives = _directives(UNIT)
    assert "PrivateNetwork" not in directives
    assert all(value.strip() != "any" for value in directives.get("IPAddressDeny", []))
    assert "IPAddressAllow" not in directives
    # Supplementary groups must stay mapped so upload folders are readable by group.
    assert directives.get("PrivateUsers", ["no"]) == ["no"]
    assert "DynamicUser" not in directives


def test_sysusers_creates_the_odx_agent_user(tmp_path: Path) -> None:
    sysusers = shutil.which("systemd-sysusers")
    if sysusers is None:
        pytest.skip("systemd-sysusers is not installed here")
    (tmp_path / "etc").mkdir()
    subprocess.run(
        [sysusers, f"--root={tmp_path}", str(SYSUSERS)],
        capture_output=True,
        timeout=60,
        check=True,
    )
    (entry,) = (tmp_path / "etc" / "passwd").read_text().splitlines()
    name, _, uid, gid, _, home, shell = entry.split(":")
    assert (name, home, shell) == ("odx-agent", "/var/lib/odx-agent", "/usr/sbin/nologin")
    assert uid == gid
    assert 0 < int(uid) < 1000
    assert (tmp_path / "etc" / "group").read_text().startswith(f"odx-agent:x:{gid}:")
