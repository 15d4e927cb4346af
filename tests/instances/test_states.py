"""The instance state table: refused transitions name both states, racing changes have one winner that alone
touches the stock, every change leaves a history row, and the sweeper fails what a crash left half-changed."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from kboss.db.models_instances import Instance, InstanceHistory
from kboss.errors import Conflict
from kboss.instances import states
from kboss.instances.sweeper import ACTOR, fail_abandoned
from tests.api.test_instances import DELETE, NEW, Site, consumed, instance_params, site
from tests.support.api import Api, running_api

__all__ = ["site"]


@pytest.fixture
async def api(db_url: str, data_dir: Path) -> AsyncIterator[Api]:
    async with running_api(db_url, data_dir) as running:
        yield running


def _sessions(site: Site) -> async_sessionmaker[AsyncSession]:
    sessions: async_sessionmaker[AsyncSession] = site.api.app.state.kboss.sessions
    return sessions


async def _history(site: Site, instance_id: str) -> list[tuple[str, str, str]]:
    async with _sessions(site)() as session:
        rows = await session.execute(
            select(InstanceHistory.from_state, InstanceHistory.to_state, InstanceHistory.actor)
            .where(InstanceHistory.instance_id == instance_id)
            .order_by(InstanceHistory.id)
        )
        return [(f, t, a) for f, t, a in rows]


async def _order(site: Site, name: str) -> str:
    params = instance_params(site.clusterid, source_name=name, source_outsideport="")  # two cannot share a port
    instance_id: str = (await site.admin.ok(NEW, **params))["id"]
    return instance_id


def test_the_table_is_closed_and_covers_every_state() -> None:
    assert set(states.TRANSITIONS) == {states.NEW, *states.STATES, states.GONE}
    assert all(to <= set(states.TRANSITIONS) for to in states.TRANSITIONS.values())
    assert set(states.TRANSIENT) < set(states.STATES) and set(states.STATE_TEXT) == set(states.STATES)


@pytest.mark.parametrize(("from_state", "to_state"), [("ready", "applying"), ("failed", "ready"), ("ready", "deleted")])
def test_a_transition_the_table_refuses_names_both_states(from_state: str, to_state: str) -> None:
    with pytest.raises(Conflict) as refused:
        states.check_transition("inst1", from_state, to_state)
    assert f"当前状态为 {from_state},不能变为 {to_state}" in refused.value.message


def test_a_change_of_a_busy_instance_is_told_what_it_is_busy_with() -> None:
    with pytest.raises(Conflict) as refused:
        states.check_transition("inst1", "applying", "deleting")
    assert refused.value.message == "资源实例 inst1 正创建中,请稍后再试"  # the answer users have always had


async def test_every_change_of_an_instance_writes_a_history_row(site: Site) -> None:
    instance_id = await _order(site, "web")
    assert await _history(site, instance_id) == [("", "applying", "alice"), ("applying", "ready", "alice")]
    await site.admin.ok(DELETE, id=instance_id)
    assert (await _history(site, instance_id))[2:] == [("ready", "deleting", "alice"), ("deleting", "deleted", "alice")]


async def test_of_two_claims_on_one_instance_only_the_first_wins(site: Site) -> None:
    instance_id = await _order(site, "web")
    async with _sessions(site)() as first, _sessions(site)() as second:
        mine, theirs = await first.get_one(Instance, instance_id), await second.get_one(Instance, instance_id)
        await states.transition(first, mine, states.DELETING, "删除", "alice")
        await first.commit()
        with pytest.raises(Conflict) as lost:  # it still saw the instance ready: the compare-and-set refuses it
            await states.transition(second, theirs, states.DELETING, "删除", "bob")
        assert lost.value.message == f"资源实例 {instance_id} 正删除中,请稍后再试"
    assert [row for row in await _history(site, instance_id) if row[1] == "deleting"] == [
        ("ready", "deleting", "alice")
    ]


async def test_two_concurrent_deletes_give_the_stock_back_once(site: Site) -> None:
    doomed, kept = await _order(site, "doomed"), await _order(site, "kept")
    assert (await consumed(site))["cpu STANDARD"] == 2
    answers = await asyncio.gather(*(site.admin.call(DELETE, id=doomed) for _ in range(2)))

    assert sorted(answer["status"] for answer in answers) == [False, True], answers
    refused = next(answer["msg"] for answer in answers if not answer["status"])
    assert "删除" in refused or refused == f"资源实例不存在: {doomed}", refused  # busy, or already gone
    # Released twice, the clamp at zero would take `kept`'s core too.
    assert (await consumed(site))["cpu STANDARD"] == 1
    assert [row[1] for row in await _history(site, doomed)].count("deleting") == 1
    assert [row[1] for row in await _history(site, kept)] == ["applying", "ready"]


async def _crash_mid_update(site: Site, instance_id: str, minutes_ago: int) -> None:
    """What a kboss process killed during an update leaves: the row `updating`, untouched since."""
    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=minutes_ago)
    async with _sessions(site)() as session:
        await session.execute(
            update(Instance).where(Instance.id == instance_id).values(state="updating", updated_at=long_ago)
        )
        await session.commit()


async def test_the_sweeper_fails_a_stuck_instance_and_records_it(site: Site) -> None:
    stuck, live = await _order(site, "stuck"), await _order(site, "live")
    await _crash_mid_update(site, stuck, minutes_ago=30)
    await _crash_mid_update(site, live, minutes_ago=0)  # a change in flight right now: not abandoned

    assert await fail_abandoned(_sessions(site), older_than_seconds=600) == 1
    async with _sessions(site)() as session:
        row = await session.get_one(Instance, stuck)
        assert row.state == "failed" and "中断" in row.last_error, row.last_error
        assert (await session.get_one(Instance, live)).state == "updating"
    assert (await _history(site, stuck))[-1] == ("updating", "failed", ACTOR)
    assert [row[1] for row in await _history(site, live)] == ["applying", "ready"]
    assert await fail_abandoned(_sessions(site), older_than_seconds=600) == 0  # once only
