"""A device's node_status as a state table: refused changes name both states, every change by hand leaves a
history row, and a hand edit that raced a cluster's reservation is refused instead of undoing it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from kboss.catalog import device_states, devices
from kboss.db.models import Device, DeviceHistory
from kboss.errors import Conflict
from tests.api.test_compat_catalog import CENTER, CPCC, device_params
from tests.support.api import Api, User, running_api

UPDATE = f"{CPCC}/cpcnode/update_cpcnode.dspy"


@pytest.fixture
async def api(db_url: str, data_dir: Path) -> AsyncIterator[Api]:
    async with running_api(db_url, data_dir) as running:
        yield running


def _sessions(api: Api) -> async_sessionmaker[AsyncSession]:
    sessions: async_sessionmaker[AsyncSession] = api.app.state.kboss.sessions
    return sessions


async def _device(api: Api) -> tuple[User, dict[str, Any]]:
    admin = await api.user("alice", "acme")
    cpcid = (await admin.ok(f"{CPCC}/cpclist/add_cpclist.dspy", **CENTER))["id"]
    added: dict[str, Any] = await admin.ok(f"{CPCC}/cpcnode/add_cpcnode.dspy", **device_params(cpcid))
    return admin, added


async def _history(api: Api, device_id: str) -> list[tuple[int, int, str]]:
    async with _sessions(api)() as session:
        rows = await session.execute(
            select(DeviceHistory.from_state, DeviceHistory.to_state, DeviceHistory.actor)
            .where(DeviceHistory.device_id == device_id)
            .order_by(DeviceHistory.id)
        )
        return [(f, t, a) for f, t, a in rows]


async def _reserve(api: Api, device_id: str, cluster_id: str) -> None:
    """What a cluster operation does to its machine (`kboss.clusters.ops`): occupied, pointing at the cluster."""
    async with _sessions(api)() as session:
        await session.execute(
            update(Device)
            .where(Device.id == device_id)
            .values(node_status=device_states.OCCUPIED, clusterid=cluster_id)
        )
        await session.commit()


def test_the_table_covers_the_spec_values() -> None:
    assert device_states.STATES == (0, 1) and set(device_states.TRANSITIONS) == set(device_states.STATES)
    assert device_states.STATUS_TEXT == {0: "空闲", 1: "占用"}  # the spec's node_status_text


def test_a_change_the_table_refuses_names_both_states() -> None:
    device = Device(id="d1", name="gpu1", node_status=device_states.IDLE)
    with pytest.raises(Conflict) as refused:
        device_states.check_transition(device, device_states.IDLE, device_states.IDLE)
    assert "当前为空闲 (0),不能变为空闲 (0)" in refused.value.message


async def test_every_change_by_hand_writes_a_history_row(api: Api) -> None:
    admin, added = await _device(api)
    params = device_params(added["cpcid"], id=added["id"], adminpwd="******")
    assert (await admin.ok(UPDATE, **{**params, "node_status": "1"}))["node_status_text"] == "占用"
    await admin.ok(UPDATE, **{**params, "node_status": "1", "name": "renamed"})  # no change of state: no row
    assert (await admin.ok(UPDATE, **{**params, "node_status": "0"}))["node_status_text"] == "空闲"
    assert await _history(api, added["id"]) == [(0, 1, "alice"), (1, 0, "alice")]


async def test_a_device_in_a_cluster_is_not_set_idle_and_nothing_is_recorded(api: Api) -> None:
    admin, added = await _device(api)
    await _reserve(api, added["id"], "cluster-1")
    params = device_params(added["cpcid"], id=added["id"], adminpwd="******", node_status="0")
    assert "仍属于集群 cluster-1" in await admin.refused(UPDATE, **params)
    assert await _history(api, added["id"]) == []


async def test_a_hand_edit_that_raced_a_reservation_is_refused(api: Api) -> None:
    _, added = await _device(api)
    async with _sessions(api)() as session:
        seen = await session.get_one(Device, added["id"])  # the admin's page still shows it idle
        await _reserve(api, added["id"], "cluster-1")
        with pytest.raises(Conflict) as lost:
            await device_states.transition(session, seen, device_states.OCCUPIED, "手工占用", "alice")
        assert "已被其他请求改变" in lost.value.message
        await session.rollback()
    assert await _history(api, added["id"]) == []


async def test_setting_idle_by_hand_never_frees_a_machine_a_cluster_just_reserved(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin, added = await _device(api)
    params = device_params(added["cpcid"], id=added["id"], adminpwd="******")
    await admin.ok(UPDATE, **{**params, "node_status": "1"})  # occupied by hand: no cluster
    read = devices.get_device

    async def read_then_reserve(*args: Any, **kwargs: Any) -> Device:
        device = await read(*args, **kwargs)
        await _reserve(api, added["id"], "cluster-2")  # lands between the edit's read and its write
        return device

    monkeypatch.setattr(devices, "get_device", read_then_reserve)
    assert "已被其他请求改变" in await admin.refused(UPDATE, **{**params, "node_status": "0"})
    async with _sessions(api)() as session:
        row = await session.get_one(Device, added["id"])
        assert (row.node_status, row.clusterid) == (device_states.OCCUPIED, "cluster-2")
    assert await _history(api, added["id"]) == [(0, 1, "alice")]
