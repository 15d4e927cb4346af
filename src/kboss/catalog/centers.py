"""Compute centers (the spec's cpclist): a site with its site-agent URL and API credentials."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator
from sqlalchemy import exists, select

from kboss.common.context import Ctx
from kboss.common.listing import Page, order_by, paged_rows
from kboss.common.published import buyable_center, visible_centers
from kboss.common.records import date_text, get_owned
from kboss.common.validation import HttpUrl, Input, OptionalDate, Phone, Secret, Text, check_date_order, parse
from kboss.crypto import mask
from kboss.db.models import Center, Cluster, Device, Org
from kboss.errors import Conflict, InvalidParameter
from kboss.sites.tls import normalise_fingerprint

# No agent answers here: the `.invalid` top-level domain is reserved, so nothing can ever be reached by mistake.
SIMULATED_URL = "https://simulated.invalid"
_AGENT_FIELDS = ("pcapi_url", "api_user", "api_pwd", "agent_cert_sha256")
SORTABLE = {"name": Center.name, "enable_date": Center.enable_date, "expire_date": Center.expire_date}
_TRUE, _FALSE = ("true", "1"), ("false", "0", "")


def _fingerprint(value: str) -> str:
    """The agent certificate's SHA-256 as the operator gives it; "" pins nothing (trust on first use)."""
    return normalise_fingerprint(value) if value.strip() else ""


def _switch(value: Any) -> Any:
    """true/false as JSON, or as the compat form's text ("true", "false", "1", "0")."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE or text in _FALSE:
        return text in _TRUE
    raise ValueError("应为 true 或 false")


Fingerprint = Annotated[str, AfterValidator(_fingerprint)]
Switch = Annotated[bool, BeforeValidator(_switch)]


class CenterInput(Input):
    name: Text
    pcapi_url: HttpUrl
    api_user: Text
    api_pwd: Secret
    contactname: Text
    contactphone: Phone
    enable_date: OptionalDate = None
    expire_date: OptionalDate = None
    # TLS to the agent (docs/security.md "TLS to site agents"): a fingerprint given out of band, checked on first
    # contact (none: trust on first use); plain HTTP to an agent off this machine only when allowed here.
    agent_cert_sha256: Fingerprint = ""
    allow_plain_http: Switch = False


def center_row(center: Center, ctx: Ctx, reveal: bool = False, org_name: str = "") -> dict[str, Any]:
    show_secret = reveal and ctx.principal.is_admin
    return {
        "id": center.id,
        "name": center.name,
        "orgid": center.orgid,
        "pcapi_url": center.pcapi_url,
        "api_user": center.api_user,
        "api_pwd": ctx.box.open(center.api_pwd) if show_secret else mask(center.api_pwd),
        "enable_date": date_text(center.enable_date),
        "expire_date": date_text(center.expire_date),
        "contactname": center.contactname,
        "contactphone": center.contactphone,
        "orgid_text": org_name,
        "simulated": center.simulated,
        "agent_cert_sha256": center.agent_cert_sha256,
        "allow_plain_http": center.allow_plain_http,
    }


def published_row(center: Center, provider_name: str = "") -> dict[str, Any]:
    """A center as a customer sees it: what it is and whom to contact, nothing of how kboss reaches its agent."""
    return {
        "id": center.id,
        "name": center.name,
        "orgid": center.orgid,
        "pcapi_url": "",
        "api_user": "",
        "api_pwd": "",
        "enable_date": date_text(center.enable_date),
        "expire_date": date_text(center.expire_date),
        "contactname": center.contactname,
        "contactphone": center.contactphone,
        "orgid_text": provider_name,
        "simulated": center.simulated,
    }


async def list_centers(ctx: Ctx, page: Page, reveal: bool = False) -> dict[str, Any]:
    """The caller's centers; for a customer, the centers its provider published to it (`published_row`)."""
    query = select(Center).where(visible_centers(ctx.principal))
    query = query.order_by(*order_by(SORTABLE, page.sort, [Center.created_at, Center.id]))
    owner = ctx.principal.catalog_orgid
    org_name = await ctx.session.scalar(select(Org.name).where(Org.id == owner)) or ""
    if ctx.principal.is_customer:
        return await paged_rows(ctx.session, query, page, lambda c: published_row(c, org_name))
    return await paged_rows(ctx.session, query, page, lambda c: center_row(c, ctx, reveal, org_name))


async def read_center(ctx: Ctx, center_id: str, reveal: bool = False) -> dict[str, Any]:
    """One center's row; a customer reads a center published to it as `published_row`."""
    if ctx.principal.is_customer:
        return published_row(await buyable_center(ctx, center_id, "id"))
    return center_row(await get_center(ctx, center_id, "id"), ctx, reveal)


async def get_center(ctx: Ctx, center_id: str | None, param: str = "cpcid") -> Center:
    return await get_owned(ctx, Center, center_id, param, "算力中心")


async def add_center(ctx: Ctx, params: Mapping[str, Any], simulated: bool = False) -> Center:
    ctx.require_admin()
    data = parse(CenterInput, params)
    check_date_order(data.enable_date, data.expire_date, "enable_date", "expire_date")
    values = data.model_dump()
    values["api_pwd"] = ctx.box.seal(data.api_pwd)
    center = Center(orgid=ctx.orgid, simulated=simulated, **values)
    ctx.session.add(center)
    await ctx.session.commit()
    return center


async def create_center(ctx: Ctx, params: Mapping[str, Any]) -> Center:
    """The native API's add: as `add_center`; `simulated: true` (never the default) makes a simulated center, whose
    machines and clusters live in memory, to try kboss without machines. It has no site agent to fill in."""
    simulated = params.get("simulated", False)
    if not isinstance(simulated, bool):
        raise InvalidParameter("simulated", "应为 true 或 false")
    if not simulated:
        return await add_center(ctx, params)
    for name in _AGENT_FIELDS:
        if str(params.get(name) or "").strip():
            raise InvalidParameter(name, "模拟算力中心没有站点服务,不要填写该项")
    return await add_center(ctx, {**params, **simulated_agent()}, simulated=True)


def simulated_agent() -> dict[str, str]:
    """The agent fields of a simulated center: an address nothing answers, a password nobody needs."""
    return {"pcapi_url": SIMULATED_URL, "api_user": "simulated", "api_pwd": secrets.token_urlsafe(18)}


async def update_center(ctx: Ctx, params: Mapping[str, Any]) -> Center:
    ctx.require_admin()
    center = await get_center(ctx, params.get("id"), "id")
    merged = {**center_row(center, ctx, reveal=False), **_present(params)}
    data = parse(CenterInput, merged)
    check_date_order(data.enable_date, data.expire_date, "enable_date", "expire_date")
    repin(center, data, given=params.get("agent_cert_sha256") is not None)
    for field, value in data.model_dump(exclude={"api_pwd", "agent_cert_sha256"}).items():
        setattr(center, field, value)
    if not keeps_secret(data.api_pwd):
        center.api_pwd = ctx.box.seal(data.api_pwd)
    await ctx.session.commit()
    return center


def repin(center: Center, data: CenterInput, given: bool) -> None:
    """A fingerprint given that is not the pinned one replaces the pin ("" forgets it): the certificate is fetched
    and checked against it at the next contact. Another agent URL without a fingerprint is a new first use."""
    if given and data.agent_cert_sha256 != center.agent_cert_sha256:
        center.agent_cert_sha256, center.agent_cert_pem = data.agent_cert_sha256, ""
    elif not given and data.pcapi_url != center.pcapi_url:
        center.agent_cert_sha256, center.agent_cert_pem = "", ""


async def delete_center(ctx: Ctx, center_id: str | None) -> Center:
    ctx.require_admin()
    center = await get_center(ctx, center_id, "id")
    if await ctx.session.scalar(select(exists().where(Device.cpcid == center.id))):
        raise Conflict(f"算力中心 {center.name} 下还有算力设备,请先移除设备")
    if await ctx.session.scalar(select(exists().where(Cluster.cpcid == center.id))):
        raise Conflict(f"算力中心 {center.name} 下还有算力集群,请先移除集群")
    await ctx.session.delete(center)
    await ctx.session.commit()
    return center


def keeps_secret(value: str | None) -> bool:
    """An update that sends back the mask (or nothing) keeps the stored secret as it is."""
    return value is None or value == "" or set(value) == {"*"}


def _present(params: Mapping[str, Any]) -> dict[str, Any]:
    """Parameters the caller actually sent; absent ones keep their stored value."""
    return {key: value for key, value in params.items() if value is not None}
