"""Operation steps reach an https agent as the services do (`open_site`): pinned on first use, refused in the
handshake when the certificate changed, plain HTTP off loopback refused; on both databases."""

from __future__ import annotations

from pathlib import Path

import pytest

from kboss.clusters.site_access import SiteEnv, open_site
from kboss.db.models import Center
from kboss.operations.logs import StepLog
from kboss.operations.steps import OperationInfo, StepContext
from kboss.redaction import Redactor
from kboss.sites.trust import InsecureSite, SiteCertificateChanged
from tests.operations.kit import Lab, lab_on
from tests.support.site import SITE_PASSWORD, SITE_USER, free_port
from tests.support.tls_agent import agent, certificate

PLAN = "/pcapi/api/v1/native/provision/plan"


def step_context(lab: Lab) -> StepContext:
    info = OperationInfo("op", lab.admin.orgid, "create_cluster", "site", None, (), {}, 1, "opadmin")
    mask = Redactor([])
    output = StepLog(lab.sessions, "no-step", "", 0, mask)
    return StepContext(info, "plan", None, 1, lab.sessions, SiteEnv(box=lab.box), output, mask)


async def add_center(lab: Lab, url: str) -> str:
    async with lab.sessions() as session:
        center = Center(
            orgid=lab.admin.orgid, name="tls", pcapi_url=url, api_user=SITE_USER, api_pwd=lab.box.seal(SITE_PASSWORD),
            contactname="c", contactphone="13141005621",
        )  # fmt: skip
        session.add(center)
        await session.commit()
        return center.id


async def test_steps_pin_the_agent_and_refuse_another_certificate(db_url: str, tmp_path: Path) -> None:
    first, second = certificate(tmp_path / "a"), certificate(tmp_path / "b")
    port = free_port()
    async with lab_on(db_url) as lab:
        ctx = step_context(lab)
        async with agent(tmp_path / "site", first[:2], port) as (url, counting):
            center_id = await add_center(lab, url)
            async with open_site(ctx, center_id) as site:
                assert "preflight" in await site.plan("master", {"host": "10.0.0.1"})
            assert counting.paths == [PLAN]
        async with lab.sessions() as session:
            assert (await session.get_one(Center, center_id)).agent_cert_sha256 == first[2]
        async with agent(tmp_path / "site", second[:2], port) as (url, counting):
            async with open_site(ctx, center_id) as site:
                with pytest.raises(SiteCertificateChanged) as refused:
                    await site.plan("master", {"host": "10.0.0.1"})
            assert counting.paths == []
        assert first[2] in refused.value.message and second[2] in refused.value.message


async def test_steps_refuse_plain_http_off_loopback(db_url: str) -> None:
    async with lab_on(db_url) as lab:
        center_id = await add_center(lab, "http://10.255.255.1:1")
        with pytest.raises(InsecureSite):
            async with open_site(step_context(lab), center_id):
                pass
