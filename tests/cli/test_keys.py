"""`kboss keys rotate|reseal|prune|status` against a running app's database: every secret re-encrypted under the new
key in one transaction, the running server following the key file without a restart, logins ending only at prune."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select, update
from typer.testing import CliRunner, Result

from kboss.cli.keys import keys_app
from kboss.crypto import SecretBox, parse_keys
from kboss.db.models import Device
from kboss.db.models_audit import AuditEvent
from kboss.db.sealed import SEALED_COLUMNS, column_name
from kboss.settings import get_settings
from tests.api.test_compat_catalog import CENTER, CPCC, KUBECONFIG, device_params, import_cluster
from tests.support.api import Api, User, running_api

PLAINTEXTS = {"centers.api_pwd": CENTER["api_pwd"], "devices.adminpwd": "Kyy@123456", "clusters.kubeconfig": KUBECONFIG}


@pytest.fixture(autouse=True)
def fresh_settings() -> Iterator[None]:
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


async def _cli(db_url: str, data_dir: Path, *args: str, secret_key: str = "") -> Result:
    """In a thread: the command runs its own event loop, as it does from a shell."""
    env = {"KBOSS_DATABASE_URL": db_url, "KBOSS_DATA_DIR": str(data_dir), "KBOSS_SECRET_KEY": secret_key}
    get_settings.cache_clear()  # each command is a process of its own, reading the environment afresh
    return await asyncio.to_thread(CliRunner().invoke, keys_app, list(args), env=env, catch_exceptions=False)


async def _sealed(api: Api) -> dict[str, list[str]]:
    async with api.app.state.kboss.sessions() as session:
        return {
            column_name(column): [value for value in (await session.scalars(select(column))).all() if value]
            for column in SEALED_COLUMNS
        }


async def _catalog(api: Api) -> tuple[User, str]:
    admin = await api.user("alice", "acme")
    center = await admin.ok(f"{CPCC}/cpclist/add_cpclist.dspy", **CENTER)
    await admin.ok(f"{CPCC}/cpcnode/add_cpcnode.dspy", **device_params(center["id"]))
    await import_cluster(admin, center["id"])
    return admin, center["id"]


async def _revealed_center_password(admin: User) -> str:
    rows = (await admin.ok(f"{CPCC}/cpclist/get_cpclist.dspy", "GET", reveal="1"))["rows"]
    password: str = rows[0]["api_pwd"]
    return password


async def test_rotate_reencrypts_every_secret_and_prune_ends_old_logins(db_url: str, data_dir: Path) -> None:
    async with running_api(db_url, data_dir, secret_key="", session_check_seconds=0) as api:
        admin, _ = await _catalog(api)
        before = await _sealed(api)
        old_key = parse_keys((data_dir / "secret.key").read_text())

        rotated = await _cli(db_url, data_dir, "rotate")
        assert rotated.exit_code == 0, rotated.output
        assert "centers.api_pwd: 1 re-encrypted, 1 of them from older keys" in rotated.output
        ring = parse_keys((data_dir / "secret.key").read_text())
        assert len(ring) == 2 and ring[1:] == old_key
        only_new = SecretBox(ring[0])
        for column, values in (await _sealed(api)).items():
            assert len(values) == len(before[column]) and not set(values) & set(before[column]), column
            assert all(only_new.sealed_with_primary(value) for value in values), column
            if column in PLAINTEXTS:
                assert [only_new.open(value) for value in values] == [PLAINTEXTS[column]]
        # The running server follows the key file: it reads under the new key, and the login it signed still holds.
        assert await _revealed_center_password(admin) == CENTER["api_pwd"]

        pruned = await _cli(db_url, data_dir, "prune")
        assert pruned.exit_code == 0 and "logins signed with them end" in pruned.output
        assert parse_keys((data_dir / "secret.key").read_text()) == ring[:1]
        assert (await admin.call(f"{CPCC}/cpclist/get_cpclist.dspy", "GET"))["status"] is False  # signed with the old
        again = await api.user("bob", "acme")
        assert await _revealed_center_password(again) == CENTER["api_pwd"]
        async with api.app.state.kboss.sessions() as session:
            audited = (await session.scalars(select(AuditEvent).where(AuditEvent.action == "keys.rotate"))).all()
        assert [event.detail["command"] for event in audited] == ["keys rotate", "keys prune"]
        assert all(event.actor.startswith("cli:") and event.detail["secrets"] == 3 for event in audited)
        status = await _cli(db_url, data_dir, "status")
        assert "(seals)" in status.output and "opens only" not in status.output
        assert ring[0] not in status.output and "clusters.kubeconfig: 1 secrets, 0 on older keys" in status.output


async def test_a_secret_no_key_opens_stops_the_rotation_and_changes_nothing(db_url: str, data_dir: Path) -> None:
    async with running_api(db_url, data_dir, secret_key="") as api:
        await _catalog(api)
        async with api.app.state.kboss.sessions() as session:
            await session.execute(update(Device).values(adminpwd=SecretBox("a key nobody has").seal("x")))
            await session.commit()
        before = await _sealed(api)
        rotated = await _cli(db_url, data_dir, "rotate")
        assert rotated.exit_code == 1
        assert "devices.adminpwd 中编号" in rotated.output and "轮换已取消" in rotated.output
        assert await _sealed(api) == before  # one transaction: the centers' secret was not re-encrypted either


async def test_keys_from_the_environment_are_rotated_by_the_operator(db_url: str, data_dir: Path) -> None:
    async with running_api(db_url, data_dir, secret_key="old-key-1") as api:
        await _catalog(api)
    refused = await _cli(db_url, data_dir, "rotate", secret_key="old-key-1")
    assert refused.exit_code == 1 and "KBOSS_SECRET_KEY=new,old" in refused.output

    resealed = await _cli(db_url, data_dir, "reseal", secret_key="new-key-2,old-key-1")
    assert resealed.exit_code == 0 and "devices.adminpwd: 1 re-encrypted, 1 of them from older keys" in resealed.output
    pruned = await _cli(db_url, data_dir, "prune", secret_key="new-key-2,old-key-1")
    assert "remove them from KBOSS_SECRET_KEY" in pruned.output
    async with running_api(db_url, data_dir, secret_key="new-key-2") as api:
        admin = await api.user("carol", "acme")
        assert await _revealed_center_password(admin) == CENTER["api_pwd"]
