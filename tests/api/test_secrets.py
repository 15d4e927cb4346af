"""Secrets are encrypted at rest, masked in answers, kept intact across updates, and kept out of logs."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import text

from kboss.logs import RedactingFilter
from tests.api.test_compat_catalog import CENTER, CPCC, device_params, import_cluster
from tests.support.api import Api


async def _raw(api: Api, sql: str) -> list[str]:
    async with api.app.state.kboss.sessions() as session:
        return [str(value) for value in (await session.execute(text(sql))).scalars().all()]


async def test_stored_secrets_are_ciphertext(api: Api) -> None:
    admin = await api.user("alice", "acme")
    cpcid = (await admin.ok(f"{CPCC}/cpclist/add_cpclist.dspy", **CENTER))["id"]
    await admin.ok(f"{CPCC}/cpcnode/add_cpcnode.dspy", **device_params(cpcid, adminpwd="Dev1ce-Secret"))
    await import_cluster(admin, cpcid)
    stored = await _raw(api, "SELECT api_pwd FROM centers") + await _raw(api, "SELECT adminpwd FROM devices")
    kubeconfigs = await _raw(api, "SELECT kubeconfig FROM clusters")
    assert all(value.startswith("enc:v1:") for value in stored + kubeconfigs)
    assert "Kyy@123456" not in "".join(stored) and "Dev1ce-Secret" not in "".join(stored)
    assert "token" not in "".join(kubeconfigs)


async def test_updates_never_re_encrypt(api: Api) -> None:
    admin = await api.user("alice", "acme")
    cpcid = (await admin.ok(f"{CPCC}/cpclist/add_cpclist.dspy", **CENTER))["id"]
    device = await admin.ok(f"{CPCC}/cpcnode/add_cpcnode.dspy", **device_params(cpcid, adminpwd="Dev1ce-Secret"))
    before = await _raw(api, "SELECT adminpwd FROM devices")
    for _ in range(3):
        await admin.ok(
            f"{CPCC}/cpcnode/update_cpcnode.dspy", **device_params(cpcid, id=device["id"], adminpwd="******")
        )
    assert await _raw(api, "SELECT adminpwd FROM devices") == before
    revealed = await admin.ok(f"{CPCC}/cpcnode/get_cpcnode.dspy", "GET", cpcid=cpcid, reveal="1")
    assert revealed["rows"][0]["adminpwd"] == "Dev1ce-Secret"


@pytest.mark.parametrize(
    "line",
    [
        "GET /dev/cpcc/cpclist/add_cpclist.dspy?name=x&api_pwd=Kyy@123456&contactname=y",
        '{"api_user": "ysh", "api_pwd": "Kyy@123456"}',
        "yaml_apply_delete source_authpasswd=Kyy@123456 psssword=Kyy@123456",
    ],
)
def test_log_lines_never_carry_secrets(line: str, caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("kboss.test-redaction")
    logger.addFilter(RedactingFilter())
    with caplog.at_level(logging.INFO, logger=logger.name):
        logger.info("request %s", line)
    assert "Kyy@123456" not in caplog.text and "******" in caplog.text
