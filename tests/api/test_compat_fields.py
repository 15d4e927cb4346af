"""Fields the document's answer schemas list beyond its examples: the center's organisation name, the cluster a
device belongs to."""

from __future__ import annotations

from sqlalchemy import update

from kboss.db.models import Device
from tests.api.test_compat_catalog import CENTER, CPCC, device_params, import_cluster
from tests.support.api import Api


async def test_center_rows_name_their_organisation(api: Api) -> None:
    admin = await api.user("alice", "acme")
    await admin.ok(f"{CPCC}/cpclist/add_cpclist.dspy", **CENTER)
    [row] = (await admin.ok(f"{CPCC}/cpclist/get_cpclist.dspy", "GET"))["rows"]
    assert row["orgid_text"] == "acme"


async def test_device_rows_name_their_cluster(api: Api) -> None:
    admin = await api.user("alice", "acme")
    cpcid = (await admin.ok(f"{CPCC}/cpclist/add_cpclist.dspy", **CENTER))["id"]
    member = (await admin.ok(f"{CPCC}/cpcnode/add_cpcnode.dspy", **device_params(cpcid)))["id"]
    await admin.ok(f"{CPCC}/cpcnode/add_cpcnode.dspy", **device_params(cpcid, ip="192.168.0.9", name="idle"))
    clusterid = await import_cluster(admin, cpcid, "朝阳区")
    # Operations put devices into clusters; here the membership is written directly, as a finished build leaves it.
    async with api.app.state.kboss.sessions() as session:
        await session.execute(update(Device).where(Device.id == member).values(clusterid=clusterid, node_status=1))
        await session.commit()
    rows = (await admin.ok(f"{CPCC}/cpcnode/get_cpcnode.dspy", "GET", cpcid=cpcid))["rows"]
    assert {row["name"]: row["cluster_name"] for row in rows} == {"gpu设备1": "朝阳区", "idle": ""}
