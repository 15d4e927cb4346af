"""The label catalog (the spec's cpclabel): node labels `key=value` (type 1), instance labels `key:value` (type 0)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import AfterValidator
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from kboss.common.context import Ctx
from kboss.common.listing import Page, order_by, paged_rows
from kboss.common.records import get_owned, time_text
from kboss.common.validation import Flag01, Input, Text, parse
from kboss.db.models import Label
from kboss.errors import Conflict
from kboss.kube.labels import validate_label_key, validate_label_value

LABELTYPE_INSTANCE = 0
LABELTYPE_NODE = 1
SYMBOL = {LABELTYPE_INSTANCE: ":", LABELTYPE_NODE: "="}
SORTABLE = {"name": Label.name, "label_key": Label.label_key, "update_time": Label.update_time}


def _key(value: str) -> str:
    return validate_label_key(value, "label_key")


def _value(value: str) -> str:
    return validate_label_value(value, "label_value")


class LabelInput(Input):
    name: Text
    labeltype: Flag01
    label_key: Annotated[str, AfterValidator(_key)]
    label_value: Annotated[str, AfterValidator(_value)]


def label_row(label: Label) -> dict[str, Any]:
    return {
        "id": label.id,
        "name": label.name,
        "orgid": label.orgid,
        "labeltype": str(label.labeltype),
        "label_key": label.label_key,
        "symbol": SYMBOL[label.labeltype],
        "label_value": label.label_value,
        "update_time": time_text(label.update_time),
    }


async def list_labels(ctx: Ctx, page: Page, labeltype: int | None = None) -> dict[str, Any]:
    query = select(Label).where(Label.orgid == ctx.orgid)
    if labeltype is not None:
        query = query.where(Label.labeltype == labeltype)
    query = query.order_by(*order_by(SORTABLE, page.sort, [Label.update_time, Label.id]))
    return await paged_rows(ctx.session, query, page, label_row)


async def add_label(ctx: Ctx, params: Mapping[str, Any]) -> Label:
    ctx.require_admin()
    data = parse(LabelInput, params)
    label = Label(orgid=ctx.orgid, **data.model_dump())
    ctx.session.add(label)
    try:
        await ctx.session.commit()
    except IntegrityError:
        await ctx.session.rollback()
        text = f"{data.label_key}{SYMBOL[data.labeltype]}{data.label_value}"
        raise Conflict(f"标签 {text} 已存在") from None
    return label


async def delete_label(ctx: Ctx, label_id: str | None) -> Label:
    ctx.require_admin()
    label = await get_owned(ctx, Label, label_id, "id", "资源标签")
    await ctx.session.delete(label)
    await ctx.session.commit()
    return label
