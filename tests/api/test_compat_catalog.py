"""The catalog's compat endpoints at the spec's paths, checked against the spec's example answers."""

from __future__ import annotations

from typing import Any

from tests.support.api import Api, User
from tests.support.spec import field_names, success_example

CPCC = "/dev/cpcc"
KUBECONFIG = """apiVersion: v1
kind: Config
clusters:
- name: c1
  cluster: {server: "https://127.0.0.1:1"}
contexts:
- name: ctx
  context: {cluster: c1, user: u1}
current-context: ctx
users:
- name: u1
  user: {token: abc}
"""
CENTER = {
    "name": "首都算力中心1",
    # No agent listens there: tests never send traffic off this machine.
    "pcapi_url": "http://127.0.0.1:9",
    "api_user": "ysh",
    "api_pwd": "Kyy@123456",
    "contactname": "Ahexl",
    "contactphone": "13141005621",
    "enable_date": "2025-05-16",
    "expire_date": "2026-06-17",
}


def device_params(cpcid: str, ip: str = "192.168.0.8", **extra: Any) -> dict[str, Any]:
    return {
        "cpcid": cpcid,
        "ip": ip,
        "name": "gpu设备1",
        "devicetype": "1",
        "sshport": "22",
        "adminuser": "ysh",
        "adminpwd": "Kyy@123456",
        "node_status": "0",
        "external_ip": "",
        "cpu_model": "STANDARD",
        "cpu_stock": "64",
        "memory_model": "STANDARD",
        "memory_stock": "256",
        "sysdisk_stock": "100",
        "datadisk_stock": "1000",
        "gpu_model": "RTX5090-32G",
        "gpu_stock": "8",
        "role": "worker",
        "enable_date": "2025-05-16",
        "export_date": "2026-06-17",
        **extra,
    }


def assert_fields_like_spec(path: str, data: Any) -> None:
    expected = field_names(success_example(path)["data"])
    missing = expected - field_names(data)
    assert not missing, f"{path} lacks the spec's fields {sorted(missing)}"


async def import_cluster(user: User, cpcid: str, name: str = "朝阳区") -> str:
    response = await user.http.post(
        "/api/v1/clusters/import",
        json={"cpcid": cpcid, "name": name, "kubeconfig": KUBECONFIG},
        headers=user.headers,
    )
    assert response.status_code == 201, response.text
    cluster_id: str = response.json()["id"]
    return cluster_id


async def test_center_lifecycle_matches_the_spec(api: Api) -> None:
    admin = await api.user("alice", "acme")
    added = await admin.ok(f"{CPCC}/cpclist/add_cpclist.dspy", **CENTER)
    assert_fields_like_spec(f"{CPCC}/cpclist/add_cpclist.dspy", added)
    assert len(added["id"]) == 21
    assert added["api_pwd"] == "******"

    listed = await admin.ok(f"{CPCC}/cpclist/get_cpclist.dspy", "GET")
    assert_fields_like_spec(f"{CPCC}/cpclist/get_cpclist.dspy", listed)
    assert listed["total"] == 1 and listed["rows"][0]["row_num_"] == 1

    updated = await admin.ok(
        f"{CPCC}/cpclist/update_cpclist.dspy", **{**CENTER, "id": added["id"], "name": "首都算力中心3"}
    )
    assert_fields_like_spec(f"{CPCC}/cpclist/update_cpclist.dspy", updated)
    assert updated["name"] == "首都算力中心3"

    deleted = await admin.ok(f"{CPCC}/cpclist/delete_cpclist.dspy", id=added["id"])
    assert deleted == {"id": added["id"], "orgid": added["orgid"]}
    assert (await admin.ok(f"{CPCC}/cpclist/get_cpclist.dspy", "GET"))["total"] == 0


async def test_update_without_id_answers_the_spec_message(api: Api) -> None:
    admin = await api.user("alice", "acme")
    assert await admin.refused(f"{CPCC}/cpclist/update_cpclist.dspy", **CENTER) == "无算力中心ID"
    assert await admin.refused(f"{CPCC}/cpcnode/get_cpcnode.dspy", "GET") == "无算力中心ID"


async def test_password_is_masked_unless_an_admin_asks_and_survives_updates(api: Api) -> None:
    admin = await api.user("alice", "acme")
    center = await admin.ok(f"{CPCC}/cpclist/add_cpclist.dspy", **CENTER)
    # Sending back the mask, or no password at all, keeps the stored one exactly.
    await admin.ok(f"{CPCC}/cpclist/update_cpclist.dspy", **{**CENTER, "id": center["id"], "api_pwd": "******"})
    params = {k: v for k, v in CENTER.items() if k != "api_pwd"}
    await admin.ok(f"{CPCC}/cpclist/update_cpclist.dspy", **{**params, "id": center["id"]})
    revealed = await admin.ok(f"{CPCC}/cpclist/get_cpclist.dspy", "GET", reveal="1")
    assert revealed["rows"][0]["api_pwd"] == "Kyy@123456"

    await admin.ok(f"{CPCC}/cpclist/update_cpclist.dspy", **{**CENTER, "id": center["id"], "api_pwd": "n3w-secret"})
    revealed = await admin.ok(f"{CPCC}/cpclist/get_cpclist.dspy", "GET", reveal="1")
    assert revealed["rows"][0]["api_pwd"] == "n3w-secret"


async def test_device_lifecycle_matches_the_spec(api: Api) -> None:
    admin = await api.user("alice", "acme")
    cpcid = (await admin.ok(f"{CPCC}/cpclist/add_cpclist.dspy", **CENTER))["id"]
    added = await admin.ok(f"{CPCC}/cpcnode/add_cpcnode.dspy", **device_params(cpcid))
    assert_fields_like_spec(f"{CPCC}/cpcnode/add_cpcnode.dspy", added)
    assert added["adminpwd"] == "******"

    listed = await admin.ok(f"{CPCC}/cpcnode/get_cpcnode.dspy", "GET", cpcid=cpcid)
    assert_fields_like_spec(f"{CPCC}/cpcnode/get_cpcnode.dspy", listed)
    row = listed["rows"][0]
    assert (row["node_status_text"], row["devicetype_text"], row["external_ip"]) == ("空闲", "物理机", "未设置")

    idle = await admin.ok(f"{CPCC}/cpcnode/get_cpcidle_device.dspy", "GET", cpcid=cpcid)
    assert_fields_like_spec(f"{CPCC}/cpcnode/get_cpcidle_device.dspy", idle)
    assert [d["id"] for d in idle] == [added["id"]]

    params = device_params(cpcid, id=added["id"], name="gpu设备122cccc", node_status="1", adminpwd="******")
    updated = await admin.ok(f"{CPCC}/cpcnode/update_cpcnode.dspy", **params)
    assert_fields_like_spec(f"{CPCC}/cpcnode/update_cpcnode.dspy", updated)
    assert updated["node_status_text"] == "占用"
    assert await admin.ok(f"{CPCC}/cpcnode/get_cpcidle_device.dspy", "GET", cpcid=cpcid) == []
    revealed = await admin.ok(f"{CPCC}/cpcnode/get_cpcnode.dspy", "GET", cpcid=cpcid, reveal="1")
    assert revealed["rows"][0]["adminpwd"] == "Kyy@123456"

    assert await admin.ok(f"{CPCC}/cpcnode/delete_cpcnode.dspy", id=added["id"]) == {"id": added["id"]}


async def test_device_lists_page_and_sort(api: Api) -> None:
    admin = await api.user("alice", "acme")
    cpcid = (await admin.ok(f"{CPCC}/cpclist/add_cpclist.dspy", **CENTER))["id"]
    for n in range(5):
        await admin.ok(f"{CPCC}/cpcnode/add_cpcnode.dspy", **device_params(cpcid, f"10.0.0.{n + 1}", name=f"d{n}"))
    page = await admin.ok(f"{CPCC}/cpcnode/get_cpcnode.dspy", "GET", cpcid=cpcid, page=2, rows=2, sort="name desc")
    assert page["total"] == 5
    assert [(r["name"], r["row_num_"]) for r in page["rows"]] == [("d2", 3), ("d1", 4)]
    message = await admin.refused(f"{CPCC}/cpcnode/get_cpcnode.dspy", "GET", cpcid=cpcid, sort="adminpwd")
    assert "sort" in message


async def test_center_with_devices_or_clusters_cannot_be_deleted(api: Api) -> None:
    admin = await api.user("alice", "acme")
    cpcid = (await admin.ok(f"{CPCC}/cpclist/add_cpclist.dspy", **CENTER))["id"]
    device = await admin.ok(f"{CPCC}/cpcnode/add_cpcnode.dspy", **device_params(cpcid))
    assert "设备" in await admin.refused(f"{CPCC}/cpclist/delete_cpclist.dspy", id=cpcid)
    await admin.ok(f"{CPCC}/cpcnode/delete_cpcnode.dspy", id=device["id"])
    await import_cluster(admin, cpcid)
    assert "集群" in await admin.refused(f"{CPCC}/cpclist/delete_cpclist.dspy", id=cpcid)


async def test_labels_match_the_spec(api: Api) -> None:
    admin = await api.user("alice", "acme")
    added = await admin.ok(
        f"{CPCC}/cpclabel/add_cpclabel.dspy", name="GPU设备", labeltype="1", label_key="kyy-gpu", label_value="true"
    )
    assert_fields_like_spec(f"{CPCC}/cpclabel/add_cpclabel.dspy", added)
    await admin.ok(
        f"{CPCC}/cpclabel/add_cpclabel.dspy", name="测试标签", labeltype="0", label_key="kyy-test", label_value="ok"
    )
    listed = await admin.ok(f"{CPCC}/cpclabel/get_cpclabel.dspy", "GET")
    assert_fields_like_spec(f"{CPCC}/cpclabel/get_cpclabel.dspy", listed)
    assert {(r["label_key"], r["symbol"]) for r in listed["rows"]} == {("kyy-gpu", "="), ("kyy-test", ":")}
    duplicate = await admin.refused(
        f"{CPCC}/cpclabel/add_cpclabel.dspy", name="again", labeltype="1", label_key="kyy-gpu", label_value="true"
    )
    assert "已存在" in duplicate
    assert await admin.ok(f"{CPCC}/cpclabel/delete_cpclabel.dspy", id=added["id"]) == {"id": added["id"]}


async def test_cluster_records_list_and_update_only_name_and_dates(api: Api) -> None:
    admin = await api.user("alice", "acme")
    cpcid = (await admin.ok(f"{CPCC}/cpclist/add_cpclist.dspy", **CENTER))["id"]
    cluster_id = await import_cluster(admin, cpcid)
    listed = await admin.ok(f"{CPCC}/cpccluster/get_cpccluster.dspy", "GET", cpcid=cpcid)
    assert_fields_like_spec(f"{CPCC}/cpccluster/get_cpccluster.dspy", listed)
    row = listed["rows"][0]
    assert (row["clustertype_text"], row["kubeconfig"]) == ("kubernetes", "******")

    await admin.ok(
        f"{CPCC}/cpccluster/update_cpccluster.dspy", cpcid=cpcid, id=cluster_id, name="通州区", export_date="2030-01-01"
    )
    row = (await admin.ok(f"{CPCC}/cpccluster/get_cpccluster.dspy", "GET", cpcid=cpcid))["rows"][0]
    assert (row["name"], row["export_date"]) == ("通州区", "2030-01-01")
    message = await admin.refused(
        f"{CPCC}/cpccluster/update_cpccluster.dspy", cpcid=cpcid, id=cluster_id, clusterjoin="kubeadm join x"
    )
    assert "clusterjoin" in message
