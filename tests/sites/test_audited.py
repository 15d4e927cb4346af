"""Site calls that change a machine or a cluster are in the audit trail: the steps of an operation (by the
operation), and a user's node labels and instances (by the user, from the request's address); reads are not."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select

from kboss.db.models_audit import AuditEvent
from kboss.sites.simulated.site import forget
from tests.api.test_instances import DELETE, NEW, instance_params
from tests.api.test_simulated_site import LABEL, NODES, _simulated_cluster
from tests.support.api import Api, running_api


@pytest.fixture
async def api(db_url: str, data_dir: Path) -> AsyncIterator[Api]:
    async with running_api(db_url, data_dir, worker_enabled=False) as running:
        yield running
    forget()


async def _site_calls(api: Api) -> list[AuditEvent]:
    async with api.app.state.kboss.sessions() as session:
        query = select(AuditEvent).where(AuditEvent.action == "site.call").order_by(AuditEvent.id)
        return list((await session.scalars(query)).all())


async def test_changing_site_calls_are_recorded_with_who_asked_and_how_they_ended(api: Api) -> None:
    admin = await api.user("alice", "acme")
    cpcid, cid = await _simulated_cluster(api, admin)
    built = await _site_calls(api)
    steps = [event for event in built if event.detail["call"].startswith("step:")]
    assert steps and all(event.actor.startswith("operation:") and event.outcome == "ok" for event in steps)
    assert {event.target_type for event in steps} == {"machine"}
    assert all(event.detail["center_id"] == cpcid and event.orgid == built[0].orgid for event in steps)

    where = {"cpcid": cpcid, "clusterid": cid}
    await admin.ok(NODES, "GET", **where)  # a read: not recorded
    await admin.ok(LABEL, **where, worker_node="sim-02", label="kyy-gpu=false", opt="label")
    await admin.refused(LABEL, **where, worker_node="sim-02", label="kyy-gpu=true", opt="unlabel")
    created = await admin.ok(NEW, **instance_params(cid))
    await admin.ok(DELETE, id=created["id"])

    later = [
        (e.actor, e.detail["call"], e.target_type, e.target_id, e.outcome)
        for e in (await _site_calls(api))[len(built) :]
    ]
    assert later == [
        ("alice", "label:label", "node", "sim-02", "ok"),
        ("alice", "label:unlabel", "node", "sim-02", "refused"),
        ("alice", "apply_instance", "instance", created["id"], "ok"),
        ("alice", "delete_instance", "instance", created["id"], "ok"),
    ]
    assert {event.address for event in (await _site_calls(api))[len(built) :]} == {"127.0.0.1"}
