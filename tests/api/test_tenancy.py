"""A user of one organisation never reads or changes another organisation's rows, through any endpoint."""

from __future__ import annotations

import json

from tests.api.test_compat_catalog import CENTER, CPCC, device_params, import_cluster
from tests.support.api import Api, User


async def _acme_catalog(admin: User) -> dict[str, str]:
    cpcid = (await admin.ok(f"{CPCC}/cpclist/add_cpclist.dspy", **CENTER))["id"]
    device = (await admin.ok(f"{CPCC}/cpcnode/add_cpcnode.dspy", **device_params(cpcid)))["id"]
    label = (
        await admin.ok(f"{CPCC}/cpclabel/add_cpclabel.dspy", name="n", labeltype="1", label_key="k", label_value="v")
    )["id"]
    cluster = await import_cluster(admin, cpcid)
    component = (
        await admin.ok(
            f"{CPCC}/cpcwidget/add_cpcwidget.dspy",
            cpcid=cpcid,
            clusterid=cluster,
            type="gpu",
            model="A100",
            unit_price=1,
            stock=4,
        )
    )["id"]
    return {"cpcid": cpcid, "device": device, "label": label, "cluster": cluster, "component": component}


async def test_other_org_sees_nothing_and_changes_nothing(api: Api) -> None:
    acme = await api.user("alice", "acme")
    ids = await _acme_catalog(acme)
    mallory = await api.user("mallory", "evil-corp")

    assert (await mallory.ok(f"{CPCC}/cpclist/get_cpclist.dspy", "GET"))["total"] == 0
    assert (await mallory.ok(f"{CPCC}/cpclabel/get_cpclabel.dspy", "GET"))["total"] == 0
    assert await mallory.ok(f"{CPCC}/cpcwidget/obtaining_gpuinfo.dspy", "GET") == {}
    reads = [
        (f"{CPCC}/cpcnode/get_cpcnode.dspy", {"cpcid": ids["cpcid"]}),
        (f"{CPCC}/cpcnode/get_cpcidle_device.dspy", {"cpcid": ids["cpcid"]}),
        (f"{CPCC}/cpccluster/get_cpccluster.dspy", {"cpcid": ids["cpcid"]}),
        (f"{CPCC}/cpcwidget/get_cpcwidget.dspy", {"cpcid": ids["cpcid"]}),
        (f"{CPCC}/cpcwidget/obtaining_gpuinfo.dspy", {"cpcid": ids["cpcid"]}),
        (f"{CPCC}/cpcwidget/obtaining_gpuinfo.dspy", {"clusterid": ids["cluster"]}),
        (
            f"{CPCC}/cpcwidget/accrual_price.dspy",
            {
                "cpcid": ids["cpcid"],
                "resources": json.dumps([{"type": "gpu", "model": "A100", "amount": 1}]),
                "duration": "1",
                "duration_unit": "小时",
            },
        ),
    ]
    writes = [
        (f"{CPCC}/cpclist/update_cpclist.dspy", {**CENTER, "id": ids["cpcid"], "name": "pwned"}),
        (f"{CPCC}/cpclist/delete_cpclist.dspy", {"id": ids["cpcid"]}),
        (f"{CPCC}/cpcnode/update_cpcnode.dspy", device_params(ids["cpcid"], id=ids["device"], name="pwned")),
        (f"{CPCC}/cpcnode/delete_cpcnode.dspy", {"id": ids["device"]}),
        (f"{CPCC}/cpcnode/add_cpcnode.dspy", device_params(ids["cpcid"], ip="10.9.9.9")),
        (f"{CPCC}/cpclabel/delete_cpclabel.dspy", {"id": ids["label"]}),
        (f"{CPCC}/cpccluster/update_cpccluster.dspy", {"id": ids["cluster"], "name": "pwned"}),
        (f"{CPCC}/cpcwidget/update_cpcwidget.dspy", {"id": ids["component"], "unit_price": 0}),
        (f"{CPCC}/cpcwidget/delete_cpcwidget.dspy", {"id": ids["component"]}),
        (
            f"{CPCC}/cpcwidget/add_cpcwidget.dspy",
            {"cpcid": ids["cpcid"], "clusterid": ids["cluster"], "type": "cpu", "unit_price": 1},
        ),
    ]
    for path, params in reads + writes:
        message = await mallory.refused(path, "GET" if "get_" in path else "POST", **params)
        assert "不存在" in message, (path, message)

    for path in (
        f"/api/v1/centers/{ids['cpcid']}",
        f"/api/v1/devices/{ids['device']}",
        f"/api/v1/clusters/{ids['cluster']}",
    ):
        assert (await mallory.http.get(path, headers=mallory.headers)).status_code == 404

    centers = await acme.ok(f"{CPCC}/cpclist/get_cpclist.dspy", "GET")
    assert centers["rows"][0]["name"] == CENTER["name"]
    devices = await acme.ok(f"{CPCC}/cpcnode/get_cpcnode.dspy", "GET", cpcid=ids["cpcid"])
    assert [d["name"] for d in devices["rows"]] == ["gpu设备1"]
    assert await acme.ok(f"{CPCC}/cpcwidget/obtaining_gpuinfo.dspy", "GET", cpcid=ids["cpcid"]) == {"A100": 4}


async def test_orgid_parameter_is_ignored_outside_development_mode(api: Api) -> None:
    acme = await api.user("alice", "acme")
    await _acme_catalog(acme)
    orgid = (await acme.ok(f"{CPCC}/cpclist/get_cpclist.dspy", "GET"))["rows"][0]["orgid"]
    mallory = await api.user("mallory", "evil-corp")
    assert (await mallory.ok(f"{CPCC}/cpclist/get_cpclist.dspy", "GET", orgid=orgid))["total"] == 0
    anonymous = await api.http.get(f"{CPCC}/cpclist/get_cpclist.dspy", params={"orgid": orgid})
    assert anonymous.json()["status"] is False
