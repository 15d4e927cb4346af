"""TLS to site agents, below the database: the generated certificate, fingerprints, pinning in the handshake, and
the plain-HTTP rule. The recorder proves that a refused agent received no byte of HTTP."""

from __future__ import annotations

import shutil
import ssl
import stat
import subprocess
from pathlib import Path

import pytest
from cryptography import x509

from kboss.sites import tls
from kboss.sites.client import SiteClient
from kboss.sites.trust import AgentTrust, InsecureSite, SiteCertificateChanged
from tests.support.tls_agent import TlsRecorder, certificate


def test_the_certificate_is_generated_once_private_and_its_own_anchor(tmp_path: Path) -> None:
    cert, key = tls.ensure_certificate(tmp_path, ["agent.example", "10.1.2.3"])
    first = cert.read_bytes()
    assert tls.ensure_certificate(tmp_path, ["other"]) == (cert, key) and cert.read_bytes() == first
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and stat.S_IMODE(cert.stat().st_mode) == 0o600
    parsed = x509.load_pem_x509_certificate(first)
    names = parsed.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {"agent.example", "localhost"} <= set(names.get_values_for_type(x509.DNSName))
    assert {str(ip) for ip in names.get_values_for_type(x509.IPAddress)} >= {"10.1.2.3", "127.0.0.1"}
    assert parsed.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert (parsed.not_valid_after_utc - parsed.not_valid_before_utc).days >= 3649


@pytest.mark.skipif(shutil.which("openssl") is None, reason="no openssl command")
def test_the_fingerprint_is_what_openssl_prints(tmp_path: Path) -> None:
    cert, _, fingerprint = certificate(tmp_path)
    out = subprocess.run(
        ["openssl", "x509", "-noout", "-fingerprint", "-sha256", "-in", str(cert)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.strip().split("=", 1)[1] == fingerprint


def test_fingerprints_are_normalised_or_refused() -> None:
    colon = ":".join(["AB"] * 32)
    assert tls.normalise_fingerprint("ab" * 32) == colon
    assert tls.normalise_fingerprint(f" {colon.lower()} ") == colon
    assert tls.normalise_fingerprint(f"sha256 Fingerprint={colon}") == colon
    for bad in ("AB:CD", "zz" * 32, "ab" * 33, colon + ":", ":" + colon, "AB" + ":" * 2 + "AB" * 31):
        with pytest.raises(ValueError):
            tls.normalise_fingerprint(bad)


def test_loopback_addresses() -> None:
    for url in ("http://127.0.0.1:9", "http://127.8.9.1", "http://localhost:80", "http://[::1]:8001"):
        assert tls.is_loopback(url), url
    for url in ("http://10.0.0.1:9", "http://site.example", "http://localhost.example", "http://[fd00::2]:1"):
        assert not tls.is_loopback(url), url


def test_plain_http_off_loopback_is_refused_before_any_connection() -> None:
    with pytest.raises(InsecureSite) as refused:
        SiteClient("http://10.255.255.1:1", "u", "secret-pass")
    assert refused.value.code == "site_plain_http" and "allow_plain_http" in refused.value.message
    assert "secret-pass" not in refused.value.message
    SiteClient("http://10.255.255.1:1", "u", "p", trust=AgentTrust(allow_plain_http=True))
    SiteClient("http://127.0.0.1:9", "u", "p")


async def test_peer_certificate_only_shakes_hands(tmp_path: Path) -> None:
    cert, key, fingerprint = certificate(tmp_path)
    with TlsRecorder(cert, key).running() as recorder:
        der, pem = await tls.peer_certificate(recorder.url)
    assert tls.fingerprint(der) == fingerprint == tls.pem_fingerprint(pem)
    assert recorder.handshakes == 1 and recorder.received == b""


async def test_the_pinned_certificate_is_accepted(tmp_path: Path) -> None:
    cert, key, fingerprint = certificate(tmp_path)
    trust = AgentTrust(cert.read_text(), fingerprint)
    with TlsRecorder(cert, key).running() as recorder:
        async with SiteClient(recorder.url, "u", "p", trust=trust) as site:
            facts = await site.probe("10.0.0.1", 22, "root", "pw", "")
    assert facts == {"hostname": "recorder"}
    assert recorder.received.startswith(b"POST /pcapi/api/v1/native/probe ")


async def test_another_certificate_fails_the_handshake_and_nothing_is_sent(tmp_path: Path) -> None:
    pinned_cert, _, pinned = certificate(tmp_path / "a")
    cert, key, presented = certificate(tmp_path / "b")
    trust = AgentTrust(pinned_cert.read_text(), pinned)
    with TlsRecorder(cert, key).running() as recorder:
        async with SiteClient(recorder.url, "u", "site-pass-1", trust=trust) as site:
            with pytest.raises(SiteCertificateChanged) as refused:
                await site.probe("10.0.0.1", 22, "root", "pw", "")
    assert recorder.connections >= 1 and recorder.received == b""
    message = refused.value.message
    assert refused.value.code == "site_certificate_changed" and refused.value.http_status == 502
    assert recorder.url in message and pinned in message and presented in message
    assert "agent_cert_sha256" in message and "site-pass-1" not in message
    assert refused.value.data == {"pinned": pinned, "presented": presented}


async def test_an_https_client_without_a_pin_never_connects(tmp_path: Path) -> None:
    cert, key, _ = certificate(tmp_path)
    with TlsRecorder(cert, key).running() as recorder:
        async with SiteClient(recorder.url, "u", "p") as site:
            with pytest.raises(Exception, match="尚未固定"):
                await site.probe("10.0.0.1", 22, "root", "pw", "")
    assert recorder.connections == 0


def test_the_pinned_context_trusts_that_certificate_only(tmp_path: Path) -> None:
    cert, _, _ = certificate(tmp_path)
    context = tls.pinned_context(cert.read_text())
    assert context.verify_mode == ssl.CERT_REQUIRED and not context.check_hostname
    assert len(context.get_ca_certs()) == 1
