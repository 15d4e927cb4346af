"""`kboss site fingerprint`, and the TLS options of `kboss serve` and `kboss serve-site` (docs/security.md "TLS to
site agents"): serve HTTPS with the certificate generated once into `<data_dir>/tls/` or with one given, and show
its fingerprint, which the operator gives the platform out of band (or compares with what it pinned)."""

from __future__ import annotations

import socket
from pathlib import Path

import typer

from kboss.settings import get_settings
from kboss.sites import tls

site_app = typer.Typer(help="The site agent's TLS certificate", no_args_is_help=True)

TLS_OPTION = typer.Option(False, "--tls", help="serve HTTPS with the certificate generated into <data_dir>/tls/")
CERT_OPTION = typer.Option(None, "--tls-cert", help="serve HTTPS with this certificate (PEM); needs --tls-key")
KEY_OPTION = typer.Option(None, "--tls-key", help="the private key (PEM) of --tls-cert")
GIVEN_CERT_OPTION = typer.Option(None, "--tls-cert", help="a given certificate (PEM) instead of the generated one")


def certificate_files(enabled: bool, cert: Path | None, key: Path | None, host: str = "") -> tuple[Path, Path] | None:
    """The certificate and key to serve (given, or generated once), or None for plain HTTP."""
    if cert is not None or key is not None:
        if cert is None or key is None:
            raise typer.BadParameter("--tls-cert 与 --tls-key 需要一起给出")
        for path in (cert, key):
            if not path.is_file():
                raise typer.BadParameter(f"文件不存在: {path}")
        return cert, key
    if not enabled:
        return None
    return tls.ensure_certificate(get_settings().data_dir, [host, socket.gethostname()])


def uvicorn_tls(enabled: bool, cert: Path | None, key: Path | None, host: str) -> tuple[str | None, str | None]:
    """uvicorn's `ssl_certfile` and `ssl_keyfile` for the options given (None: plain HTTP); the fingerprint is
    printed at start."""
    files = certificate_files(enabled, cert, key, host)
    if files is None:
        return None, None
    typer.echo(f"TLS certificate {files[0]}  SHA-256 fingerprint: {tls.file_fingerprint(files[0])}")
    return str(files[0]), str(files[1])


@site_app.command("fingerprint")
def fingerprint(cert: Path | None = GIVEN_CERT_OPTION) -> None:
    """Print the SHA-256 fingerprint of the agent's certificate (generated now if it does not exist yet), to
    enter as the center's agent_cert_sha256 on the platform."""
    if cert is None:
        cert, _ = tls.ensure_certificate(get_settings().data_dir, [socket.gethostname()])
    elif not cert.is_file():
        raise typer.BadParameter(f"文件不存在: {cert}")
    typer.echo(tls.file_fingerprint(cert))
