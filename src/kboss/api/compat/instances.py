"""Compat routes for instances, node labels, live boards and the buy page, at the spec's exact paths.

Each handler only parses and calls a service; `registry` authenticates and dispatches (GET, POST or DELETE alike,
since the spec's front end uses either).
"""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse

from kboss.api.compat.registry import compat
from kboss.common.context import Ctx
from kboss.common.listing import page_from_params
from kboss.instances import boards, buy
from kboss.instances import service as instances
from kboss.instances.records import instance_echo, list_instances
from kboss.wire.errors import ok
from kboss.wire.jsonresp import EnvelopeResponse
from kboss.wire.params import flag

CPCC = "/dev/cpcc"
APPLIED = "请10秒后查看实时资源实例面板"


@compat(f"{CPCC}/cpcpodyaml/new_cpcpodyaml.dspy")
async def new_cpcpodyaml(ctx: Ctx, params: dict[str, Any]) -> JSONResponse:
    instance = await instances.create_instance(ctx, params)
    return ok(f"新增资源实例参数成功,{APPLIED}", instance_echo(instance, ctx, "apply"))


@compat(f"{CPCC}/cpcpodyaml/get_cpcpodyaml.dspy")
async def get_cpcpodyaml(ctx: Ctx, params: dict[str, Any]) -> JSONResponse:
    page = page_from_params(params)
    data = await list_instances(ctx, params.get("cpcid"), params.get("clusterid"), page, flag(params, "reveal"))
    return ok("获取资源实例静态配置成功", data)


@compat(f"{CPCC}/cpcpodyaml/update_cpcpodyaml.dspy")
async def update_cpcpodyaml(ctx: Ctx, params: dict[str, Any]) -> JSONResponse:
    instance = await instances.update_instance(ctx, params)
    return ok(f"资源参数更新成功,{APPLIED}", instance_echo(instance, ctx))


@compat(f"{CPCC}/cpcpodyaml/delete_cpcpodyaml.dspy")
async def delete_cpcpodyaml(ctx: Ctx, params: dict[str, Any]) -> JSONResponse:
    instance = await instances.delete_instance(ctx, params.get("id"), force=flag(params, "force"))
    return ok(f"级联删除集群资源成功,{APPLIED}", {"id": instance.id})


@compat(f"{CPCC}/cpclabel/setup_cpclabel.dspy")
async def setup_cpclabel(ctx: Ctx, params: dict[str, Any]) -> JSONResponse:
    return ok("设置节点标签成功", await boards.set_node_label(ctx, params))


@compat(f"{CPCC}/cpcpod/get_cpcpod.dspy")
async def get_cpcpod(ctx: Ctx, params: dict[str, Any]) -> JSONResponse:
    data = await boards.pod_board(ctx, params.get("cpcid"), params.get("clusterid"))
    return ok("获取集群实时资源实例成功", data)


@compat(f"{CPCC}/cpcworker/get_cpcworker.dspy")
async def get_cpcworker(ctx: Ctx, params: dict[str, Any]) -> JSONResponse:
    data = await boards.node_board(ctx, params.get("cpcid"), params.get("clusterid"))
    return ok("获取集群实时成员节点成功", data)


@compat(f"{CPCC}/cpcbuy/determine_accommodat.dspy")
async def determine_accommodat(ctx: Ctx, params: dict[str, Any]) -> JSONResponse:
    found = await buy.assess(ctx, params)
    message = "获取不可部署产品ID成功"
    if found.reason == buy.REASON_CATALOG:
        message += f" (集群实时数据不可用,仅按库存判断: {found.detail})"
    # The spec's answer carries `reason` beside `data`, which the shared envelope helper has no room for;
    # `products` is kboss's: why each greyed product is greyed, and which components each line would draw on.
    products = [verdict.as_dict() for verdict in found.verdicts]
    answer = {"status": True, "msg": message, "data": found.unplaceable, "reason": found.reason, "products": products}
    return EnvelopeResponse(answer)
