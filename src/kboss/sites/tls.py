"""TLS between the platform and its site agents: the agent's certificate, its fingerprint, and pinning.

An agent serves HTTPS with a certificate it generates once (self-signed, `ensure_certificate`) or one the operator
gives. The platform does not trust it through a CA: the center record pins that exact certificate (trust on first
use, like SSH host keys, or a fingerprint the operator gave; `kboss.sites.pinning`). `pinned_context` trusts that
certificate and nothing else, so an agent presenting another one fails in the TLS handshake, before a byte of
HTTP (credentials included) is written. `peer_certificate` only shakes hands, to learn what an agent presents.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import ipaddress
import re
import ssl
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

TLS_DIR = "tls"
CERT_FILE = "agent.crt"
KEY_FILE = "agent.key"
VALID_DAYS = 3650
HANDSHAKE_SECONDS = 5.0
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
_HEX_PAIRS = re.compile(r"[0-9A-Fa-f]{2}(?::?[0-9A-Fa-f]{2}){31}")
_OPENSSL_PREFIX = "sha256 fingerprint="


def fingerprint(der: bytes) -> str:
    """SHA-256 over the DER certificate, as `openssl x509 -fingerprint -sha256` prints it: `AB:CD:…`."""
    digest = hashlib.sha256(der).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def pem_fingerprint(pem: str) -> str:
    return fingerprint(ssl.PEM_cert_to_DER_cert(pem))


def normalise_fingerprint(text: str) -> str:
    """An operator's fingerprint in any usual spelling (colons or not, any case) in the stored form; ValueError
    when it is not 32 hexadecimal byte pairs."""
    given = text.strip()
    if given.lower().startswith(_OPENSSL_PREFIX):  # pasted as openssl prints it
        given = given[len(_OPENSSL_PREFIX) :].strip()
    if not _HEX_PAIRS.fullmatch(given):
        raise ValueError("应为 SHA-256 指纹: 32 组十六进制字节 (如 AB:CD:…,冒号可省略)")
    compact = given.replace(":", "").upper()
    return ":".join(compact[i : i + 2] for i in range(0, 64, 2))


# -- the agent's own certificate ---------------------------------------------------------------------------


def ensure_certificate(data_dir: Path, hosts: Iterable[str] = ()) -> tuple[Path, Path]:
    """`<data_dir>/tls/agent.crt` and `agent.key`, generated once (0600) and reused afterwards: the fingerprint the
    platform pinned stays valid across restarts."""
    folder = data_dir / TLS_DIR
    cert, key = folder / CERT_FILE, folder / KEY_FILE
    if cert.exists() and key.exists():
        return cert, key
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    cert_pem, key_pem = make_certificate(hosts)
    for path, data in ((key, key_pem), (cert, cert_pem)):
        path.touch(0o600)
        path.chmod(0o600)  # before the key is written: it is never readable by others, even briefly
        path.write_bytes(data)
    return cert, key


def make_certificate(hosts: Iterable[str] = ()) -> tuple[bytes, bytes]:
    """A self-signed EC P-256 certificate and its key (PEM). CA:TRUE so it can be its own trust anchor; the
    names are informative only (the platform pins the certificate and does not check host names)."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kboss site agent")])
    usage = x509.KeyUsage(True, False, False, False, False, True, False, False, False)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=VALID_DAYS))
        .add_extension(x509.SubjectAlternativeName(_alt_names(hosts)), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def _alt_names(hosts: Iterable[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for host in dict.fromkeys([*hosts, *LOOPBACK_NAMES]):
        if not host or host in ("0.0.0.0", "::"):
            continue  # a wildcard bind address is no name of the machine
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


def file_fingerprint(cert_file: Path) -> str:
    return pem_fingerprint(cert_file.read_text())


# -- the platform's side -------------------------------------------------------------------------------------


def pinned_context(pem: str) -> ssl.SSLContext:
    """A client context that trusts exactly this certificate: another one fails the handshake. Host names are not
    checked (the pin is stronger than a name), nor is the certificate required to be a CA (an operator's leaf
    certificate pins as well: partial chains are accepted, the pinned certificate being the anchor)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_REQUIRED
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    context.verify_flags &= ~ssl.VERIFY_X509_STRICT
    context.load_verify_locations(cadata=pem)
    return context


def _unverified() -> ssl.SSLContext:
    # Only to read what an agent presents, never to send anything over.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


async def peer_certificate(url: str, seconds: float = HANDSHAKE_SECONDS) -> tuple[bytes, str]:
    """The certificate an https agent presents (DER, PEM), learnt by a TLS handshake alone: the connection is
    closed before any HTTP byte is written. OSError (or TimeoutError) when it cannot be reached."""
    parts = urlsplit(url)
    host, port = parts.hostname or "", parts.port or 443
    async with asyncio.timeout(seconds):
        _, writer = await asyncio.open_connection(host, port, ssl=_unverified(), server_hostname=host or None)
    try:
        sslobj = writer.get_extra_info("ssl_object")
        der = sslobj.getpeercert(binary_form=True) if sslobj is not None else None
    finally:
        writer.close()
    if not der:
        raise OSError(f"{host}:{port} 没有出示 TLS 证书")
    return der, ssl.DER_cert_to_PEM_cert(der)


def is_loopback(url: str) -> bool:
    """Whether the URL's host is this machine (127.0.0.0/8, ::1, localhost): plain HTTP there leaves no wire."""
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
