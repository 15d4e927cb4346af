"""kubeconfig parsing, TLS (CA and client certificate from memory, tunnels via the TLS server name) and errors."""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
import yaml
from lightkube.resources.core_v1 import Node

from kboss.errors import ClusterUnreachable, InvalidParameter
from kboss.kube.client import KubeApiError, create_client, open_client, parse_kubeconfig, translate_error
from kboss.kube.views import list_node_rows
from tests.kubefake import APISERVER_NAME, FakeKubeServer, KubeFake, kubeconfig_yaml, make_tls

MASTER_URL = f"https://{APISERVER_NAME}:6443"


@pytest.fixture(scope="module")
def tls_server() -> Iterator[FakeKubeServer]:
    """Like kubeadm's apiserver: its certificate names the master, not 127.0.0.1; clients present certificates."""
    with FakeKubeServer(KubeFake(token=None), tls=make_tls(), client_cert_auth=True) as server:
        server.fake.add_node("k8s-master", roles=["control-plane"])
        yield server


async def _node_names(kubeconfig: str, **options: object) -> list[str]:
    async with open_client(kubeconfig, **options) as client:  # type: ignore[arg-type]
        return [row["node_name"] for row in await list_node_rows(client)]


# ---------------------------------------------------------------------------------------------
# kubeconfig parsing


def test_parse_kubeconfig_picks_the_current_context_and_hides_secrets() -> None:
    text = kubeconfig_yaml(
        MASTER_URL, token="s3cret-token", ca_pem=make_tls().ca_pem, namespace="tenant", tls_server_name="kubernetes"
    )
    target = parse_kubeconfig(text)
    assert (target.server, target.namespace, target.tls_server_name) == (MASTER_URL, "tenant", "kubernetes")
    assert target.token == "s3cret-token" and target.ca_pem and "BEGIN CERTIFICATE" in target.ca_pem
    assert "s3cret-token" not in repr(target) and "BEGIN" not in repr(target)


def _broken(change: str) -> str:
    doc = yaml.safe_load(kubeconfig_yaml(MASTER_URL, token="s3cret-token"))
    cluster, user = doc["clusters"][0]["cluster"], doc["users"][0]["user"]
    match change:
        case "ca-file":
            cluster["certificate-authority"] = "/etc/kubernetes/pki/ca.crt"
        case "bad-ca-data":
            cluster["certificate-authority-data"] = "not base64!"
        case "exec":
            user["exec"] = {"apiVersion": "client.authentication.k8s.io/v1beta1", "command": "rm"}
        case "token-file":
            user["tokenFile"] = "/var/run/secrets/token"
        case "cert-without-key":
            user["client-certificate-data"] = base64.b64encode(make_tls().client_cert_pem.encode()).decode()
        case "no-server":
            del cluster["server"]
        case "ftp-server":
            cluster["server"] = "ftp://master"
        case "unknown-context":
            doc["current-context"] = "elsewhere"
    return yaml.safe_dump(doc)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "为空"),
        ("token: s3cret-token: [", "YAML"),
        ("- a list", "kubeconfig"),
        (_broken("ca-file"), "certificate-authority-data"),
        (_broken("bad-ca-data"), "base64"),
        (_broken("exec"), "exec"),
        (_broken("token-file"), "tokenFile"),
        (_broken("cert-without-key"), "client-key-data"),
        (_broken("no-server"), "server"),
        (_broken("ftp-server"), "http(s)"),
        (_broken("unknown-context"), "'contexts' 中找不到"),  # named by its section, not by the name given
    ],
)
def test_invalid_kubeconfigs_are_refused_without_echoing_them(text: str, problem: str) -> None:
    with pytest.raises(InvalidParameter) as caught:
        create_client(text)
    assert caught.value.parameter == "kubeconfig" and problem in caught.value.message
    assert "s3cret-token" not in caught.value.message and "elsewhere" not in caught.value.message


def test_bad_certificates_are_invalid_parameters() -> None:
    tls, other = make_tls(), make_tls()
    garbage_ca = kubeconfig_yaml(MASTER_URL, ca_pem="-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    with pytest.raises(InvalidParameter, match="certificate-authority-data"):
        create_client(garbage_ca)
    mismatched = kubeconfig_yaml(
        MASTER_URL, ca_pem=tls.ca_pem, client_cert_pem=tls.client_cert_pem, client_key_pem=other.client_key_pem
    )
    with pytest.raises(InvalidParameter, match="私钥"):
        create_client(mismatched)
    with pytest.raises(InvalidParameter, match="server"):
        create_client(kubeconfig_yaml(MASTER_URL, token="t"), server="127.0.0.1:6443")


# ---------------------------------------------------------------------------------------------
# Credentials and reachability


async def test_rejected_credentials(
    kube_server: FakeKubeServer, fake: KubeFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(KubeApiError, match="拒绝了凭据 \\(401 Unauthorized\\)") as caught:
        await _node_names(kube_server.kubeconfig(token="wrong"))
    assert caught.value.status_code == 401
    monkeypatch.setattr(fake, "forbidden_tokens", {"limited"})
    with pytest.raises(KubeApiError, match="拒绝了凭据 \\(403 Forbidden\\)"):
        await _node_names(kube_server.kubeconfig(token="limited"))


async def test_unreachable_api_server() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens there once the socket is closed
    with pytest.raises(ClusterUnreachable, match=f"127.0.0.1:{port}"):
        await _node_names(kubeconfig_yaml(f"http://127.0.0.1:{port}", token="t"))


async def test_silent_api_server_times_out() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        started = asyncio.get_running_loop().time()
        with pytest.raises(ClusterUnreachable, match="超时"):
            await _node_names(kubeconfig_yaml(url, token="t"), timeout=0.3)
        assert asyncio.get_running_loop().time() - started < 3


async def test_proxy_settings_of_the_environment_are_ignored(
    kube_server: FakeKubeServer, fake: KubeFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.add_node("n1")
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    monkeypatch.setenv("KUBECONFIG", "/nonexistent")
    assert await _node_names(kube_server.kubeconfig()) == ["n1"]


def test_http_errors_without_a_status_body() -> None:
    request = httpx2.Request("GET", "https://master:6443/api/v1/nodes")
    response = httpx2.Response(502, text="Bad Gateway", request=request)
    error = translate_error(httpx2.HTTPStatusError("bad gateway", request=request, response=response))
    assert isinstance(error, KubeApiError) and error.status_code == 502 and "Bad Gateway" in error.message


# ---------------------------------------------------------------------------------------------
# TLS: client certificates from memory, tunnels


async def test_client_certificate_never_touches_the_disk(
    tls_server: FakeKubeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_files(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("a temporary file was created")

    monkeypatch.setattr(tempfile, "TemporaryDirectory", no_files)
    monkeypatch.setattr(tempfile, "NamedTemporaryFile", no_files)
    monkeypatch.setattr(tempfile, "mkstemp", no_files)
    kubeconfig = tls_server.kubeconfig(client_cert=True, server=MASTER_URL)
    assert await _node_names(kubeconfig, server=tls_server.url) == ["k8s-master"]


async def test_without_memfd_a_private_directory_is_used_and_removed(
    tls_server: FakeKubeServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delattr(os, "memfd_create", raising=False)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    kubeconfig = tls_server.kubeconfig(client_cert=True, server=MASTER_URL)
    assert await _node_names(kubeconfig, server=tls_server.url) == ["k8s-master"]
    assert os.listdir(tmp_path) == []


async def test_tunnel_keeps_the_masters_name_for_tls(tls_server: FakeKubeServer) -> None:
    # The kubeconfig names the master; the agent reaches it through a local forward.
    kubeconfig = tls_server.kubeconfig(client_cert=True, server=MASTER_URL)
    assert await _node_names(kubeconfig, server=tls_server.url) == ["k8s-master"]
    # A kubeconfig already pointing at the forward: say which name the certificate carries.
    local = tls_server.kubeconfig(client_cert=True)
    assert await _node_names(local, tls_server_name=APISERVER_NAME) == ["k8s-master"]
    named = tls_server.kubeconfig(client_cert=True, tls_server_name=APISERVER_NAME)
    assert await _node_names(named) == ["k8s-master"]


async def test_certificate_verification_failures(tls_server: FakeKubeServer) -> None:
    with pytest.raises(ClusterUnreachable, match="TLS 证书校验失败"):
        await _node_names(tls_server.kubeconfig(client_cert=True))  # 127.0.0.1 is not in the certificate
    stranger = make_tls()
    wrong_ca = kubeconfig_yaml(
        MASTER_URL,
        ca_pem=stranger.ca_pem,
        client_cert_pem=tls_server.tls.client_cert_pem,
        client_key_pem=tls_server.tls.client_key_pem,
    )  # type: ignore[union-attr]
    with pytest.raises(ClusterUnreachable, match="TLS 证书校验失败"):
        await _node_names(wrong_ca, server=tls_server.url)


async def test_insecure_skip_tls_verify(tls_server: FakeKubeServer) -> None:
    doc = yaml.safe_load(tls_server.kubeconfig(client_cert=True))
    cluster = doc["clusters"][0]["cluster"]
    del cluster["certificate-authority-data"]
    cluster["insecure-skip-tls-verify"] = True
    async with open_client(yaml.safe_dump(doc)) as client:
        assert [n.metadata.name async for n in client.list(Node)] == ["k8s-master"]
