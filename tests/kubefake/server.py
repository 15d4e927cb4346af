"""Run the fake on 127.0.0.1 (free port, background thread, uvicorn), over HTTP or TLS, and write kubeconfigs.

with FakeKubeServer(KubeFake()) as server:
    text = server.kubeconfig()           # bearer token, plain http
with FakeKubeServer(KubeFake(token=None), tls=make_tls(), client_cert_auth=True) as server:
    text = server.kubeconfig(client_cert=True)   # CA + client certificate, like kubeadm's admin.conf
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import shutil
import socket
import ssl
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import uvicorn
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.kubefake.app import build_app
from tests.kubefake.fake import KubeFake

APISERVER_NAME = "kube-apiserver.fake.test"


@dataclass(frozen=True)
class TLSMaterial:
    ca_pem: str
    server_cert_pem: str
    server_key_pem: str
    client_cert_pem: str
    client_key_pem: str


def make_tls(dns_names: tuple[str, ...] = (APISERVER_NAME,), ips: tuple[str, ...] = ()) -> TLSMaterial:
    """A CA, a server certificate for `dns_names`/`ips` (not 127.0.0.1 unless asked: like a real master's,
    it names the master) and a `kubernetes-admin` client certificate, as kubeadm would issue them."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fake-kubernetes-ca")])
    ca = _builder(ca_name, ca_name, ca_key.public_key(), ca_key.public_key())
    ca = ca.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    ca = ca.add_extension(_key_usage(cert_sign=True), critical=True)
    ca_cert = ca.sign(ca_key, hashes.SHA256())
    sans: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
    sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    server_pem, server_key = _leaf(ca_cert, ca_key, "kube-apiserver", None, ExtendedKeyUsageOID.SERVER_AUTH, sans)
    client_pem, client_key = _leaf(
        ca_cert, ca_key, "kubernetes-admin", "system:masters", ExtendedKeyUsageOID.CLIENT_AUTH, []
    )
    return TLSMaterial(_pem(ca_cert), server_pem, server_key, client_pem, client_key)


def _builder(subject: x509.Name, issuer: x509.Name, public: Any, issuer_public: Any) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_public), critical=False)
    )


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=not cert_sign,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _leaf(
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    cn: str,
    org: str | None,
    usage: x509.ObjectIdentifier,
    sans: list[x509.GeneralName],
) -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if org:
        attrs.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    builder = _builder(x509.Name(attrs), ca_cert.subject, key.public_key(), ca_key.public_key())
    builder = builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    builder = builder.add_extension(_key_usage(cert_sign=False), critical=True)
    builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return _pem(builder.sign(ca_key, hashes.SHA256())), key_pem


def _pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def kubeconfig_yaml(
    server: str,
    *,
    token: str | None = None,
    ca_pem: str | None = None,
    client_cert_pem: str | None = None,
    client_key_pem: str | None = None,
    tls_server_name: str | None = None,
    namespace: str | None = None,
) -> str:
    """A kubeconfig in the shape kubeadm writes (one cluster, user and context, data embedded)."""
    cluster: dict[str, Any] = {"server": server}
    if ca_pem:
        cluster["certificate-authority-data"] = _b64(ca_pem)
    if tls_server_name:
        cluster["tls-server-name"] = tls_server_name
    user: dict[str, Any] = {}
    if token:
        user["token"] = token
    if client_cert_pem and client_key_pem:
        user["client-certificate-data"] = _b64(client_cert_pem)
        user["client-key-data"] = _b64(client_key_pem)
    context: dict[str, Any] = {"cluster": "fake", "user": "fake-admin"}
    if namespace:
        context["namespace"] = namespace
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "fake-admin@fake",
        "preferences": {},
        "clusters": [{"name": "fake", "cluster": cluster}],
        "users": [{"name": "fake-admin", "user": user}],
        "contexts": [{"name": "fake-admin@fake", "context": context}],
    }
    return yaml.safe_dump(doc, sort_keys=False)


class FakeKubeServer:
    """Serves a KubeFake with uvicorn in a daemon thread; `start()`/`stop()` or use as a context manager."""

    def __init__(
        self, fake: KubeFake | None = None, *, tls: TLSMaterial | None = None, client_cert_auth: bool = False
    ) -> None:
        self.fake = fake or KubeFake()
        self.tls = tls
        self.client_cert_auth = client_cert_auth
        self.port = 0
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._dir: str | None = None
        self._socket: socket.socket | None = None

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def start(self) -> FakeKubeServer:
        # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY on accepted sockets only when proto says TCP; without it
        # every keep-alive response waits ~40 ms for a delayed ACK (Nagle).
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            build_app(self.fake),
            log_level="warning",
            lifespan="off",
            ws="none",
            http="h11",
            access_log=False,
            **self._ssl_options(),
        )
        self._server = uvicorn.Server(config)
        self._socket = sock  # uvicorn listens on this very socket; closed in stop()
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, daemon=True, name=f"kubefake-{self.port}"
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the fake API server did not start")
            time.sleep(0.01)
        return self

    def _ssl_options(self) -> dict[str, Any]:
        if self.tls is None:
            return {}
        self._dir = tempfile.mkdtemp(prefix="kubefake-")
        tls = self.tls
        files = {"server.crt": tls.server_cert_pem, "server.key": tls.server_key_pem, "ca.crt": tls.ca_pem}
        for name, text in files.items():
            Path(self._dir, name).write_text(text)
        options: dict[str, Any] = {"ssl_certfile": f"{self._dir}/server.crt", "ssl_keyfile": f"{self._dir}/server.key"}
        if self.client_cert_auth:
            options |= {"ssl_ca_certs": f"{self._dir}/ca.crt", "ssl_cert_reqs": ssl.CERT_REQUIRED}
        return options

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
        if self._socket is not None:
            self._socket.close()
            self._socket = None
        if self._dir:
            shutil.rmtree(self._dir, ignore_errors=True)
        self._server = self._thread = None

    def __enter__(self) -> FakeKubeServer:
        return self.start()

    def __exit__(self, *_exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.stop()

    def kubeconfig(
        self,
        *,
        token: str | None = None,
        client_cert: bool = False,
        server: str | None = None,
        tls_server_name: str | None = None,
        namespace: str | None = None,
    ) -> str:
        """A kubeconfig for this server: its token (or `token`), or its client certificate; `server` overrides the
        URL written in it (e.g. the master's name, to test tunnels), `tls_server_name` sets `tls-server-name`."""
        tls = self.tls
        return kubeconfig_yaml(
            server or self.url,
            token=None if client_cert else (token or self.fake.token),
            ca_pem=tls.ca_pem if tls else None,
            client_cert_pem=tls.client_cert_pem if tls and client_cert else None,
            client_key_pem=tls.client_key_pem if tls and client_cert else None,
            tls_server_name=tls_server_name,
            namespace=namespace,
        )
