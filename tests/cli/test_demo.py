"""`kboss serve --demo` (prepare_demo) and `kboss demo --org`: a simulated center, clearly marked, in an org."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
import typer
from sqlalchemy import select
from typer.testing import CliRunner

from kboss.accounts import auth
from kboss.billing import ledger
from kboss.cli.demo import DEMO_BUYER, DEMO_CENTER, DEMO_USER, demo, prepare_demo
from kboss.db.engine import make_engine, make_sessionmaker
from kboss.db.models import Center, Device, Org
from kboss.settings import Settings, get_settings


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    monkeypatch.setenv("KBOSS_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("KBOSS_SECRET_KEY", "demo-test-deployment-key-0123456789")
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


async def _centers(settings: Settings, org: str) -> list[tuple[Center, list[Device]]]:
    engine = make_engine(settings.resolved_database_url())
    try:
        async with make_sessionmaker(engine)() as session:
            orgid = await session.scalar(select(Org.id).where(Org.name == org))
            centers = (await session.scalars(select(Center).where(Center.orgid == orgid))).all()
            return [
                (c, list((await session.scalars(select(Device).where(Device.cpcid == c.id))).all())) for c in centers
            ]
    finally:
        await engine.dispose()


async def _login(settings: Settings, password: str) -> str:
    engine = make_engine(settings.resolved_database_url())
    try:
        async with make_sessionmaker(engine)() as session:
            return (await auth.authenticate(session, DEMO_USER, password)).role
    finally:
        await engine.dispose()


def test_serve_demo_prepares_an_admin_and_a_simulated_center_once(settings: Settings) -> None:
    text = prepare_demo(settings, "http://127.0.0.1:9999")
    found = re.search(rf"用户名 {DEMO_USER}  密码 (\S+)", text)
    assert found and "http://127.0.0.1:9999/" in text and DEMO_CENTER in text, text
    assert asyncio.run(_login(settings, found.group(1))) == "admin"
    again = prepare_demo(settings)
    assert "已存在" in again and found.group(1) not in again
    [(center, devices)] = asyncio.run(_centers(settings, "demo"))
    assert center.simulated and center.name == DEMO_CENTER and center.pcapi_url.endswith(".invalid")
    assert len(devices) == 4 and sorted(d.gpu_stock for d in devices)[-1] == 8
    assert {d.gpu_model for d in devices if d.gpu_stock} == {"RTX4090-24G"}


async def _buyer(settings: Settings, password: str) -> tuple[str, str, Decimal]:
    engine = make_engine(settings.resolved_database_url())
    try:
        async with make_sessionmaker(engine)() as session:
            user = await auth.authenticate(session, DEMO_BUYER, password)
            org = await session.get_one(Org, user.orgid)
            provider = await session.get_one(Org, org.provider_id)
            return org.kind, provider.name, await ledger.balance(session, org.id)
    finally:
        await engine.dispose()


def test_serve_demo_adds_a_customer_with_a_balance_and_publishes_the_center(settings: Settings) -> None:
    text = prepare_demo(settings)
    found = re.search(rf"用户名 {DEMO_BUYER}  密码 (\S+)", text)
    assert found, text
    assert asyncio.run(_buyer(settings, found.group(1))) == ("customer", "demo", Decimal("1000.00"))
    [(center, _)] = asyncio.run(_centers(settings, "demo"))
    assert center.published_all
    again = prepare_demo(settings)
    assert f"用户 {DEMO_BUYER} 已存在" in again and found.group(1) not in again
    assert asyncio.run(_buyer(settings, found.group(1)))[2] == Decimal("1000.00")  # credited once


def test_demo_command_adds_one_simulated_center_to_an_org(settings: Settings) -> None:
    app = typer.Typer()
    app.command()(demo)
    first = CliRunner().invoke(app, ["--org", "acme"])
    assert first.exit_code == 0 and "已创建" in first.output and "4 台模拟设备" in first.output, first.output
    second = CliRunner().invoke(app, ["--org", "acme"])
    assert second.exit_code == 0 and "已存在" in second.output
    [(center, devices)] = asyncio.run(_centers(settings, "acme"))
    assert center.simulated and all(d.node_status == 0 and d.clusterid is None for d in devices)
