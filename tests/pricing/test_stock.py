"""Stock per cluster: which component an instance draws on, in which unit, and consuming that never oversells."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from fractions import Fraction

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from kboss.db.engine import make_engine, make_sessionmaker
from kboss.db.models import Center, Cluster, Component, ComponentStock, Org
from kboss.errors import Conflict, InvalidParameter
from kboss.kube.instance_spec import InstanceSpec
from kboss.pricing import stock
from kboss.pricing.stock import InsufficientStock, Need, Offer


def offer(
    kind: str, model: str, unit: str, stock_id: str | None = "s", available: int = 100, price: str = "0"
) -> Offer:
    stock_row = stock_id and f"{stock_id}-{kind}-{model}"
    return Offer(f"c-{kind}-{model}", stock_row, kind, model, unit, available, 0, Decimal(price))


CATALOG = [
    offer("cpu", "STANDARD", "核"),
    offer("cpu", "EPYC", "核"),
    offer("memory", "DDR5", "Gi"),
    offer("disk", "SYS", "Gi"),
    offer("disk", "DATA", "Gi"),
    offer("gpu", "RTX5090-32G", "卡"),
]


def test_models_named_win_then_preferred_then_the_only_one_then_standard() -> None:
    assert stock.pick(CATALOG, "cpu", "EPYC").model == "EPYC"
    assert stock.pick(CATALOG, "cpu", None).model == "STANDARD"
    assert stock.pick(CATALOG, "memory", None).model == "DDR5"  # the only memory stocked in the cluster
    assert (stock.pick(CATALOG, "sysdisk", None).model, stock.pick(CATALOG, "datadisk", None).model) == ("SYS", "DATA")


def test_unknown_missing_and_ambiguous_components_are_refused_clearly() -> None:
    with pytest.raises(InvalidParameter, match=r"cpu_model.*无效的 cpu 部件型号: XEON"):
        stock.pick(CATALOG, "cpu", "XEON")
    with pytest.raises(Conflict, match="没有该类型组件: gpu"):
        stock.pick(CATALOG[:5], "gpu", "RTX5090-32G")


def test_a_line_without_a_model_takes_the_cheapest_component_that_fits() -> None:
    cheap, dear = offer("memory", "DDR4", "Gi", available=4, price="0.5"), offer("memory", "DDR5", "Gi", price="2")
    assert stock.pick([dear, cheap], "memory", None, Fraction(2048)).model == "DDR4"  # 2 Gi: both fit
    assert stock.pick([dear, cheap], "memory", None, Fraction(8 * 1024)).model == "DDR5"  # 8 Gi: DDR4 has 4
    assert (
        stock.pick([offer("memory", "B", "Gi"), offer("memory", "A", "Gi")], "memory", None, Fraction(1)).model == "A"
    )
    unstocked = offer("memory", "DDR3", "Gi", stock_id=None, price="0.01")
    assert stock.pick([dear, unstocked], "memory", None, Fraction(1)).model == "DDR5"  # never stocked here
    # Nothing fits: the one with the most left, so that the answer names the closest miss.
    closest = stock.pick([dear, cheap], "memory", None, Fraction(1024 * 1024))
    assert closest.model == "DDR5"
    assert stock.shortfalls([dear, cheap], stock.needs_for([dear, cheap], {"memory": Fraction(1024**2)}, {})) == [
        "memory DDR5 库存不足 (库存: 100, 请求: 1024)"
    ]


def test_the_preferred_disk_serves_while_it_fits_and_one_order_never_counts_a_unit_twice() -> None:
    sys_disk, other = offer("disk", "SYS", "Gi", available=30, price="9"), offer("disk", "NVME", "Gi", price="1")
    needs = stock.needs_for([sys_disk, other], {"sysdisk": Fraction(20), "datadisk": Fraction(20)}, {})
    assert [(need.role, need.model) for need in needs] == [("sysdisk", "SYS"), ("datadisk", "NVME")]
    only = offer("disk", "NVME", "Gi", available=30)
    two_roles = stock.needs_for(
        [only, offer("disk", "HDD", "Gi", price="3")], {"sysdisk": Fraction(20), "datadisk": Fraction(20)}, {}
    )
    assert [need.model for need in two_roles] == ["NVME", "HDD"]  # the second 20 Gi no longer fits NVME's 30


def test_amounts_are_converted_to_the_components_unit_and_rounded_up() -> None:
    assert stock.in_unit("memory", Fraction(512), "Gi") == 1  # 512Mi of a per-Gi component: a whole Gi
    assert stock.in_unit("memory", Fraction(1536), "Mi") == 1536
    assert stock.in_unit("cpu", Fraction(1, 2), "m") == 500
    assert stock.in_unit("cpu", Fraction(1, 2), "核") == 1
    assert stock.in_unit("disk", Fraction(2048), "Ti") == 2


def _spec(**params: str) -> InstanceSpec:
    base = {
        "id": "abc",
        "clusterid": "c1",
        "orgid": "o1",
        "instance_type": "LinuxOS",
        "source_podengine": "StatefulSet",
        "source_authpasswd": "a-password",
        "source_cpurate": "1500m",
        "source_memrate": "512Mi",
        "disk_sys_limit": "10",
        "source_storagelimits": "49Gi",
    }
    return InstanceSpec.from_params({**base, **params})


def test_replicas_multiply_what_runs_and_statefulsets_get_a_volume_each() -> None:
    two = stock.instance_requests(_spec(source_replicasetnum="2", source_gpu="1", gpu_model="A100"))
    assert two == {
        "cpu": Fraction(3),
        "memory": Fraction(1024),
        "sysdisk": Fraction(20),
        "datadisk": Fraction(98),
        "gpu": Fraction(2),
    }
    job = stock.instance_requests(_spec(source_podengine="Job", source_restartpolicy="Never", source_replicasetnum="5"))
    assert (job["cpu"], job["datadisk"]) == (Fraction(3, 2), Fraction(49))  # one pod at a time, one claim


def test_needs_of_one_component_add_up_and_shortfalls_use_the_quotes_words() -> None:
    offers = [offer("cpu", "STANDARD", "核"), offer("disk", "STANDARD", "Gi", available=50)]
    needs = stock.needs_for(
        offers,
        {"cpu": Fraction(1), "sysdisk": Fraction(10), "datadisk": Fraction(49)},
        {},
    )
    assert [(n.role, n.model, n.amount) for n in needs] == [
        ("cpu", "STANDARD", 1),
        ("sysdisk", "STANDARD", 10),
        ("datadisk", "STANDARD", 49),
    ]
    assert stock.shortfalls(offers, needs) == ["disk STANDARD 库存不足 (库存: 50, 请求: 59)"]


def test_a_change_takes_the_difference_and_gives_back_the_rest() -> None:
    def need(role: str, amount: int) -> Need:
        kind = {"cpu": "cpu", "gpu": "gpu"}[role]
        return Need(role, kind, "M", "x", f"c-{kind}", f"s-{kind}", amount)

    more, less = stock.difference([need("cpu", 2), need("gpu", 2)], [need("cpu", 5), need("gpu", 1)])
    assert [(n.type, n.amount) for n in more] == [("cpu", 3)]
    assert [(n.type, n.amount) for n in less] == [("gpu", 1)]


# ---------------------------------------------------------------------------------------------
# Against the databases


@pytest.fixture
async def sessions(db_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = make_engine(db_url)
    try:
        yield make_sessionmaker(engine)
    finally:
        await engine.dispose()


async def _cards(sessions: async_sessionmaker[AsyncSession], amount: int) -> Need:
    async with sessions() as session:
        org = Org(name="acme")
        session.add(org)
        await session.flush()
        center = Center(
            orgid=org.id, name="c", pcapi_url="http://x", api_user="u", api_pwd="p", contactname="n", contactphone="1"
        )
        session.add(center)
        await session.flush()
        cluster = Cluster(orgid=org.id, cpcid=center.id, name="k")
        component = Component(
            orgid=org.id,
            cpcid=center.id,
            type="gpu",
            model="A100",
            unit_price=Decimal(1),
            resource_unit="卡",
            charge_unit="小时",
            account_unit="元",
        )
        session.add_all([cluster, component])
        await session.flush()
        row = ComponentStock(component_id=component.id, clusterid=cluster.id, stock=amount, consumed=0)
        session.add(row)
        await session.commit()
        return Need("gpu", "gpu", "A100", "卡", component.id, row.id, 1)


async def _consumed(sessions: async_sessionmaker[AsyncSession], need: Need) -> int:
    async with sessions() as session:
        value = await session.scalar(select(ComponentStock.consumed).where(ComponentStock.id == need.stock_id))
    assert value is not None
    return value


async def test_concurrent_consumers_never_take_more_than_the_stock(sessions: async_sessionmaker[AsyncSession]) -> None:
    card = await _cards(sessions, 7)

    async def order() -> bool:
        async with sessions() as session:
            try:
                await stock.consume(session, [card])
                await session.commit()
            except InsufficientStock:
                await session.rollback()
                return False
        return True

    results = await asyncio.gather(*(order() for _ in range(40)))
    assert results.count(True) == 7
    assert await _consumed(sessions, card) == 7


async def test_short_stock_names_what_is_left_and_release_never_goes_below_zero(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    card = await _cards(sessions, 3)
    three = Need(**{**card.as_json(), "amount": 3})
    async with sessions() as session:
        await stock.consume(session, [Need(**{**card.as_json(), "amount": 2})])
        await session.commit()
        with pytest.raises(InsufficientStock, match=r"gpu A100 库存不足 \(库存: 1, 请求: 3\)"):
            await stock.consume(session, [three])
        await session.rollback()
        await stock.release(session, [three])
        await session.commit()
    assert await _consumed(sessions, card) == 0
