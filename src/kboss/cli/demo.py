"""`kboss demo --org ORG` and `kboss serve --demo`: a simulated center to try kboss without machines; with
`serve --demo`, also a customer with a balance to whom the center is published, so both sides can be tried.

The center is marked `simulated` in its record and named so: its operations run on the simulated backend
(realistic delays, nothing touched), and it is never chosen for, nor confused with, a real center.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import typer
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from kboss.accounts import auth
from kboss.billing import ledger
from kboss.catalog.centers import SIMULATED_URL, add_center
from kboss.catalog.devices import add_device
from kboss.common.context import ROLE_ADMIN, Ctx, Principal
from kboss.crypto import SecretBox
from kboss.customers import service as customers
from kboss.db.engine import make_engine, make_sessionmaker, upgrade_sync
from kboss.db.models import Center, Device, User
from kboss.errors import KbossError
from kboss.settings import Settings, get_settings

DEMO_CENTER = "模拟算力中心 (simulated)"
DEMO_ORG = "demo"
DEMO_USER = "demo-admin"
DEMO_CUSTOMER = "演示客户"
DEMO_BUYER = "demo-buyer"
DEMO_BALANCE = Decimal("1000.00")
# Named so that their order by name is their order here (listings and tests pick machines by position).
MACHINES: tuple[dict[str, Any], ...] = (
    {"name": "sim-01-gpu", "ip": "10.250.0.11", "devicetype": 1, "cpu_stock": 64, "memory_stock": 512,
     "sysdisk_stock": 200, "datadisk_stock": 4000, "gpu_model": "RTX4090-24G", "gpu_stock": 8},
    {"name": "sim-02", "ip": "10.250.0.21", "devicetype": 0, "cpu_stock": 32, "memory_stock": 128,
     "sysdisk_stock": 100, "datadisk_stock": 1000},
    {"name": "sim-03", "ip": "10.250.0.22", "devicetype": 0, "cpu_stock": 32, "memory_stock": 128,
     "sysdisk_stock": 100, "datadisk_stock": 1000},
    {"name": "sim-04", "ip": "10.250.0.23", "devicetype": 0, "cpu_stock": 16, "memory_stock": 64,
     "sysdisk_stock": 100, "datadisk_stock": 500},
)  # fmt: skip


@dataclass
class DemoCenter:
    center_id: str
    created: bool
    device_ids: list[str] = field(default_factory=list)


async def add_demo_center(session: AsyncSession, box: SecretBox, org_name: str) -> DemoCenter:
    """The org's simulated center with its machines (the org is created when missing); once per org."""
    org = await auth.get_or_create_org(session, org_name)
    await session.commit()
    existing = await session.scalar(
        select(Center.id).where(Center.orgid == org.id, Center.name == DEMO_CENTER, Center.simulated.is_(True))
    )
    if existing:
        devices = await session.scalars(select(Device.id).where(Device.cpcid == existing).order_by(Device.name))
        return DemoCenter(existing, False, list(devices))
    ctx = Ctx(session, principal=Principal("kboss-demo", "kboss-demo", org.id, ROLE_ADMIN), box=box)
    center = await add_center(ctx, _center_params(), simulated=True)
    demo = DemoCenter(center.id, True)
    for machine in MACHINES:
        device = await add_device(ctx, {**machine, "cpcid": center.id, **_account()})
        demo.device_ids.append(device.id)
    return demo


def _center_params() -> dict[str, Any]:
    return {
        "name": DEMO_CENTER, "pcapi_url": SIMULATED_URL, "api_user": "simulated",
        "api_pwd": secrets.token_urlsafe(18), "contactname": "kboss demo", "contactphone": "13800000000",
    }  # fmt: skip


def _account() -> dict[str, Any]:
    # Simulated machines are never logged into; a random password satisfies the record's rules.
    return {"adminuser": "root", "adminpwd": secrets.token_urlsafe(18), "sshport": 22}


async def _with_database(settings: Settings, org_name: str, user: bool) -> tuple[DemoCenter, str | None, str | None]:
    engine = make_engine(settings.resolved_database_url())
    box = SecretBox(settings.key_ring())
    try:
        async with make_sessionmaker(engine)() as session:
            password = await _demo_user(session, org_name) if user else None
            demo = await add_demo_center(session, box, org_name)
            buyer = await _demo_customer(session, demo.center_id) if user else None
            return demo, password, buyer
    finally:
        await engine.dispose()


async def _demo_customer(session: AsyncSession, center_id: str) -> str | None:
    """A customer of the demo provider with a balance, the simulated center published to all customers; its
    admin's password (returned once), or None when the customer already exists."""
    center = await session.get_one(Center, center_id)
    if not center.published_all:
        center.published_all = True
        await session.commit()
    if await session.scalar(select(User.id).where(User.username == DEMO_BUYER)):
        return None
    password = secrets.token_urlsafe(12)
    org, _ = await customers.add_customer(session, center.orgid, DEMO_CUSTOMER, DEMO_BUYER, password)
    await ledger.credit(session, org.id, DEMO_BALANCE, ledger.Ref(note="演示充值", actor="kboss-demo"))
    await session.commit()
    return password


async def _demo_user(session: AsyncSession, org_name: str) -> str | None:
    """A new admin with a random password (returned once), or None when the demo user already exists."""
    if await session.scalar(select(User.id).where(User.username == DEMO_USER)):
        return None
    password = secrets.token_urlsafe(12)
    await auth.create_user(session, DEMO_USER, password, org_name, ROLE_ADMIN)
    return password


def _summary(org_name: str, demo: DemoCenter) -> str:
    state = "已创建" if demo.created else "已存在"
    return f"{DEMO_CENTER} {state}: 组织 {org_name}, 算力中心 {demo.center_id}, {len(demo.device_ids)} 台模拟设备"


def prepare_demo(settings: Settings, url: str = "http://127.0.0.1:8000") -> str:
    """For `kboss serve --demo`: the demo organisation, its admin and its simulated center; the login text."""
    upgrade_sync(settings.resolved_database_url())
    demo, password, buyer = asyncio.run(_with_database(settings, DEMO_ORG, user=True))
    lines = [_summary(DEMO_ORG, demo), _login_line("服务商", DEMO_USER, password, url)]
    lines.append(_login_line(f"客户 {DEMO_CUSTOMER} (余额 {DEMO_BALANCE} 元)", DEMO_BUYER, buyer, url))
    lines.append("模拟中心已发布给全部客户;其操作以真实时长播放 (建集群约 4.5 分钟),不连接任何机器。")
    return "\n".join(lines)


def _login_line(who: str, username: str, password: str | None, url: str) -> str:
    if password is None:
        return f"{who}: 用户 {username} 已存在 (密码在首次创建时打印过)"
    return f"{who}登录: {url}/  用户名 {username}  密码 {password}  (只显示这一次)"


def demo(org: str = typer.Option(..., help="organisation name; created when missing")) -> None:
    """Add a simulated center with a few machines (one with 8 GPUs) to an organisation."""
    settings = get_settings()
    upgrade_sync(settings.resolved_database_url())
    try:
        created, _, _ = asyncio.run(_with_database(settings, org, user=False))
    except KbossError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from None
    typer.echo(_summary(org, created))
