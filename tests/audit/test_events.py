"""Operations started, retried and cancelled; secrets revealed; site calls; the table refuses UPDATE; retention
deletes only old rows; `record` never raises and never commits the caller's transaction."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.exc import DBAPIError

from kboss.audit import retention, trail
from kboss.common.context import Ctx, Principal
from kboss.db.models import Org
from kboss.db.models_audit import AuditEvent
from tests.api.test_compat_catalog import CENTER, CPCC, device_params
from tests.audit.kit import events
from tests.support.api import Api, User


async def _principal(api: Api, user: User) -> Principal:
    me = (await api.http.get("/api/v1/auth/me", headers=user.headers)).json()
    return Principal(me["user_id"], me["username"], me["orgid"], me["role"])


async def test_operation_start_and_cancel(api: Api) -> None:
    admin = await api.user("alice", "acme")
    cpcid = (await admin.ok(f"{CPCC}/cpclist/add_cpclist.dspy", **CENTER))["id"]
    device = (await admin.ok(f"{CPCC}/cpcnode/add_cpcnode.dspy", **device_params(cpcid, role="master")))["id"]
    body = {"cpcid": cpcid, "device_id": device, "name": "k1"}
    started = await api.http.post("/api/v1/clusters", json=body, headers=admin.headers)
    assert started.status_code == 202, started.text
    op_id, cluster = started.json()["id"], started.json()["cluster_id"]
    cancelled = await api.http.post(f"/api/v1/operations/{op_id}/cancel", headers=admin.headers)
    assert cancelled.status_code == 200, cancelled.text
    (start,) = await events(api, "operation.start")
    assert (start.actor, start.target_type, start.target_id, start.address) == (
        "alice",
        "operation",
        op_id,
        "127.0.0.1",
    )
    assert start.detail["kind"] == "create_cluster" and start.detail["cluster_id"] == cluster
    assert start.detail["device_ids"] == [device]
    (cancel,) = await events(api, "operation.cancel")
    assert (cancel.target_id, cancel.outcome, cancel.actor) == (op_id, "ok", "alice")


async def test_an_operation_started_outside_a_request(api: Api) -> None:
    from kboss.operations.service import start_operation

    admin = await api.user("alice", "acme")
    principal = await _principal(api, admin)
    state = api.app.state.kboss
    async with state.sessions() as session:
        op = await start_operation(Ctx(session=session, principal=principal, box=state.box), "create_cluster", None, [])
    (start,) = await events(api, "operation.start")
    assert (start.target_id, start.address, start.orgid) == (op.id, "local", principal.orgid)


async def test_reveals_by_an_admin_are_recorded(api: Api) -> None:
    admin = await api.user("alice", "acme")
    member = await api.user("bob", "acme", admin=False)
    cpcid = (await admin.ok(f"{CPCC}/cpclist/add_cpclist.dspy", **CENTER))["id"]
    device = (await admin.ok(f"{CPCC}/cpcnode/add_cpcnode.dspy", **device_params(cpcid)))["id"]
    await admin.ok(f"{CPCC}/cpcnode/get_cpcnode.dspy", "GET", cpcid=cpcid)  # masked: nothing shown
    await member.ok(f"{CPCC}/cpcnode/get_cpcnode.dspy", "GET", cpcid=cpcid, reveal="1")  # a member: masked
    assert await events(api, "secret.reveal") == []
    await admin.ok(f"{CPCC}/cpcnode/get_cpcnode.dspy", "GET", cpcid=cpcid, reveal="1")
    shown = await api.http.get(f"/api/v1/centers/{cpcid}", params={"reveal": "true"}, headers=admin.headers)
    assert shown.json()["api_pwd"] == CENTER["api_pwd"]
    by_device, by_center = await events(api, "secret.reveal")
    assert (by_device.target_type, by_device.target_id, by_device.actor) == ("device", device, "alice")
    assert by_device.detail["fields"] == ["adminpwd"] and by_device.address == "127.0.0.1"
    assert (by_center.target_type, by_center.target_id, by_center.detail["fields"]) == ("center", cpcid, ["api_pwd"])


async def test_site_calls(api: Api) -> None:
    admin = await api.user("alice", "acme")
    principal = await _principal(api, admin)
    sessions = api.app.state.kboss.sessions
    await trail.record_site_call(
        sessions, actor=principal, orgid=principal.orgid, center_id="c1", action="provision.kubeadm_init",
        target_type="cluster", target_id="k1", outcome=trail.FAILED, code="site_unreachable",
    )  # fmt: skip
    await trail.record_site_call(
        sessions, actor=None, orgid=principal.orgid, center_id="c1", action="node.drain",
        target_type="device", target_id="d1", outcome=trail.OK,
    )  # fmt: skip
    by_alice, by_system = await events(api, "site.call")
    assert (by_alice.actor, by_alice.orgid, by_alice.outcome, by_alice.code) == ("alice", principal.orgid, "failed",
                                                                                 "site_unreachable")  # fmt: skip
    assert by_alice.detail == {"center_id": "c1", "call": "provision.kubeadm_init"} and by_alice.address == "local"
    assert (by_system.actor, by_system.target_id, by_system.outcome) == ("system", "d1", "ok")


async def test_the_table_refuses_updates(api: Api) -> None:
    await api.user("alice", "acme")
    async with api.app.state.kboss.sessions() as session:
        with pytest.raises(DBAPIError):
            await session.execute(update(AuditEvent).values(outcome="ok", actor="someone-else"))
        await session.rollback()
    assert {e.actor for e in await events(api)} == {"alice"}


async def test_retention_deletes_only_old_rows(api: Api) -> None:
    sessions = api.app.state.kboss.sessions
    await trail.record(sessions, trail.Event("api.write", actor="old"), trail.Event("api.write", actor="new"))
    async with sessions() as session:  # back-date one row (the trigger allows no UPDATE: re-insert it)
        old = await session.scalar(select(AuditEvent).where(AuditEvent.actor == "old"))
        assert old is not None
        await session.delete(old)
        at = dt.datetime.now(dt.UTC) - dt.timedelta(days=40)
        session.add(AuditEvent(at=at, actor="old", action="api.write", outcome="ok", detail={}))
        await session.commit()
    assert await retention.prune(sessions, 0) == 0  # 0 keeps everything
    assert await retention.prune(sessions, 60) == 0
    assert await retention.prune(sessions, 30) == 1
    assert [e.actor for e in await events(api)] == ["new"]


async def test_record_keeps_out_of_the_callers_transaction(api: Api) -> None:
    sessions = api.app.state.kboss.sessions
    async with sessions() as session:
        # Pending, not flushed: on SQLite a flushed write would hold the one writer's lock that `record` waits for
        # (hence callers record after their commit); committing the caller's session would write it.
        session.add(Org(name="never-committed"))
        await trail.record(session, trail.Event("api.write", actor="x"))
        await session.rollback()
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Org).where(Org.name == "never-committed")) == 0
    assert [e.actor for e in await events(api)] == ["x"]


async def test_record_never_raises(api: Api, caplog: pytest.LogCaptureFixture) -> None:
    sessions = api.app.state.kboss.sessions
    async with sessions() as session:
        await session.execute(text("DROP TABLE audit_events"))
        await session.commit()
    await trail.record(sessions, trail.Event("api.write", actor="x"))
    assert "could not record 1 audit event" in caplog.text


def test_detail_keeps_only_harmless_values() -> None:
    kept = trail.safe_detail({"cpcid": "c1", "password": "p", "kubeconfig": "k", "whatever": "w", "ids": ["a"]})
    assert kept == {"cpcid": "c1", "ids": ["a"]}
    assert trail.parameter_names(["b", "a", "a", "?x=1", "api_pwd"]) == ["a", "api_pwd", "b"]
