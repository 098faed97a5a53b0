"""https:// nodes: certificates are verified by default, a CA bundle can be given, and a
failed verification is a NodeConnectionError that does not show the token."""

from __future__ import annotations

import json
import ssl
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
import trustme

from odx_agent.nodeodx import Node, NodeConnectionError
from tests.integration.test_client_servers import ScriptedServer, answer

INFO = {"version": "2.3.1", "taskQueueCount": 0, "maxImages": None, "engine": "odx"}
TOKEN = "tls/token+="


@pytest.fixture(scope="module")
def authority() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def ca_bundle(authority: trustme.CA, tmp_path: Path) -> str:
    path = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(path))
    return str(path)


@pytest.fixture
def tls_server(authority: trustme.CA) -> Iterator[ScriptedServer]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    with ScriptedServer(answer(json.dumps(INFO).encode()), tls_context=context) as server:
        yield server


def test_https_node_with_its_ca_bundle(tls_server: ScriptedServer, ca_bundle: str) -> None:
    node = Node.from_url(f"{tls_server.url}/?token={quote(TOKEN, safe='')}", verify=ca_bundle)
    assert node.scheme == "https"
    assert node.info().version == "2.3.1"
    assert tls_server.requests[0].target == f"/info?token={quote(TOKEN, safe='')}"


def test_https_node_by_host_and_port(tls_server: ScriptedServer, ca_bundle: str) -> None:
    node = Node("127.0.0.1", tls_server.port, TOKEN, 5, verify=ca_bundle, scheme="https")
    assert node.info().engine == "odx"


def test_unknown_certificate_is_refused_by_default(tls_server: ScriptedServer) -> None:
    node = Node.from_url(f"{tls_server.url}/?token={quote(TOKEN, safe='')}")
    with pytest.raises(NodeConnectionError, match="CERTIFICATE_VERIFY_FAILED") as caught:
        node.info()
    assert TOKEN not in str(caught.value)
    assert quote(TOKEN, safe="") not in str(caught.value)
    assert caught.value.__context__ is None


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_verification_can_be_switched_off(tls_server: ScriptedServer) -> None:
    node = Node.from_url(tls_server.url, verify=False)
    assert node.info().version == "2.3.1"
