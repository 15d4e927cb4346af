"""`kboss site fingerprint` and the TLS options of `kboss serve` / `kboss serve-site` (uvicorn is not started:
what it would be given is recorded)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from typer.testing import CliRunner

from kboss.cli.main import app
from kboss.settings import get_settings
from kboss.sites import tls


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("KBOSS_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda target, **kwargs: calls.append({"target": target, **kwargs}))
    return calls


def test_fingerprint_generates_the_certificate_once(data_dir: Path) -> None:
    first = CliRunner().invoke(app, ["site", "fingerprint"])
    assert first.exit_code == 0, first.output
    cert = data_dir / "tls" / "agent.crt"
    assert first.output.strip() == tls.file_fingerprint(cert)
    assert CliRunner().invoke(app, ["site", "fingerprint"]).output == first.output


def test_serve_site_tls_serves_the_generated_certificate(data_dir: Path, served: list[dict[str, Any]]) -> None:
    result = CliRunner().invoke(app, ["serve-site", "--tls", "--host", "0.0.0.0"])
    assert result.exit_code == 0, result.output
    cert, key = data_dir / "tls" / "agent.crt", data_dir / "tls" / "agent.key"
    assert served[0]["ssl_certfile"] == str(cert) and served[0]["ssl_keyfile"] == str(key)
    assert tls.file_fingerprint(cert) in result.output


def test_serve_takes_a_given_certificate_and_plain_http_by_default(
    data_dir: Path, served: list[dict[str, Any]], tmp_path: Path
) -> None:
    cert, key = tls.ensure_certificate(tmp_path / "given")
    result = CliRunner().invoke(app, ["serve", "--tls-cert", str(cert), "--tls-key", str(key)])
    assert result.exit_code == 0, result.output
    assert (served[0]["ssl_certfile"], served[0]["ssl_keyfile"]) == (str(cert), str(key))
    assert not (data_dir / "tls").exists()
    assert CliRunner().invoke(app, ["serve-site"]).exit_code == 0
    assert served[1]["ssl_certfile"] is None and not (data_dir / "tls").exists()


def test_a_certificate_without_its_key_is_refused(data_dir: Path, served: list[dict[str, Any]]) -> None:
    cert, _ = tls.ensure_certificate(data_dir / "given")
    result = CliRunner().invoke(app, ["serve-site", "--tls-cert", str(cert)])
    assert result.exit_code != 0 and not served
