"""A NodePort is held by one instance per cluster: a second one asking for it is refused before anything is applied,
naming the port and the holder — on create, on update, and when two creates race for it."""

from __future__ import annotations

import asyncio

from tests.api.test_instances import NEW, UPDATE, Site, consumed, instance_params, site

__all__ = ["site"]


async def test_a_taken_nodeport_is_refused_naming_its_holder_before_the_cluster_sees_it(site: Site) -> None:
    first = await site.admin.ok(NEW, **instance_params(site.clusterid, source_name="first"))
    services_before = site.fake.list("Service", site.namespace)
    after_first = await consumed(site)
    message = await site.admin.refused(NEW, **instance_params(site.clusterid, source_name="second"))
    assert "NodePort 30063" in message and first["id"] in message and "first" in message
    # Refused by kboss, not by the API server: nothing of the second reached the cluster.
    assert site.fake.list("Service", site.namespace) == services_before
    assert len(site.fake.list("StatefulSet", site.namespace)) == 1
    assert await consumed(site) == after_first


async def test_an_update_to_a_taken_nodeport_is_refused_and_changes_nothing(site: Site) -> None:
    first = await site.admin.ok(NEW, **instance_params(site.clusterid, source_name="first"))
    params = instance_params(site.clusterid, source_name="second", source_outsideport="30070")
    second = await site.admin.ok(NEW, **params)
    message = await site.admin.refused(UPDATE, **{**params, "id": second["id"], "source_outsideport": "30063"})
    assert "NodePort 30063" in message and first["id"] in message
    # Its own port is no conflict: an update that keeps it goes through.
    await site.admin.ok(UPDATE, **{**params, "id": second["id"], "source_cpurate": "2"})


async def test_a_nodeport_outside_the_range_is_refused_naming_the_range(site: Site) -> None:
    message = await site.admin.refused(NEW, **instance_params(site.clusterid, source_outsideport="29999"))
    assert "source_outsideport" in message and "30000" in message and "32767" in message


async def test_two_creates_racing_for_one_nodeport_one_wins(site: Site) -> None:
    answers = await asyncio.gather(
        *(site.admin.call(NEW, **instance_params(site.clusterid, source_name=f"racer{i}")) for i in range(2))
    )
    won = [a for a in answers if a["status"] is True]
    lost = [a for a in answers if a["status"] is not True]
    assert (len(won), len(lost)) == (1, 1), answers
    assert "30063" in lost[0]["msg"]
    assert len(site.fake.list("StatefulSet", site.namespace)) == 1
