"""What the platform asks of a site, as one typed interface: provisioning steps and machine probes, node
operations (cordon, drain, delete), cluster reads, labels, instance objects and capacity.

Two implementations: `kboss.sites.client.SiteClient`, the HTTP client to a center's site agent, and
`kboss.sites.simulated.site.SimulatedSiteClient`, for a center marked simulated, which plays the same plan on
simulated machines. Operations and services take a `Site`; which one they get depends only on the center
(`kboss.sites.simulated.site.site_for_center` for services, `kboss.clusters.site_access.open_site` for steps).

Failures are kboss errors (`SiteUnreachable`, `ClusterUnreachable`, `UpstreamError`, `NotFound`, ...), except
where the answer itself says what went wrong: a step's `StepReport` and a node call's `NodeAnswer`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Protocol, Self

from kboss.wire.plan import Role

OnLine = Callable[[str], None]
CHANGED, UNCHANGED, SKIPPED, FAILED = "changed", "unchanged", "skipped", "failed"


@dataclass(frozen=True)
class StepReport:
    """What the site says about one provisioning step: changed | unchanged | skipped | failed."""

    name: str
    status: str
    error: str = ""
    reason: str = ""
    seconds: float = 0.0
    secrets: dict[str, str] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class NodeAnswer:
    """The answer to a node call: `info` its message (with the pods a drain left, and why), `report` the drain's
    report (evicted, deleted, skipped, failed; empty when there was no drain), `code` the error's code when the
    call was refused (`not_found`: the node is not, or no longer, in the cluster)."""

    ok: bool
    info: str
    report: dict[str, Any] = field(default_factory=dict)
    code: str = ""


class ClosedOnExit:
    """`async with site:` closes what the site holds (a connection pool) on the way out."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        return None


class Site(Protocol):
    async def __aenter__(self) -> Site: ...

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...

    # -- machines ------------------------------------------------------------------------------------
    async def plan(self, role: Role, options: Mapping[str, str]) -> list[str]: ...
    async def run_step(self, name: str, form: Mapping[str, str], on_line: OnLine) -> StepReport: ...
    async def reset(self, form: Mapping[str, str], on_line: OnLine) -> StepReport: ...
    async def probe(self, host: str, port: int, user: str, password: str, private_key: str) -> dict[str, Any]: ...

    # -- nodes -----------------------------------------------------------------------------------------
    async def cordon(self, kubeconfig: str, node: str) -> NodeAnswer: ...
    async def drain(self, kubeconfig: str, node: str, seconds: int, force: bool = False) -> NodeAnswer: ...
    async def delete_node(self, kubeconfig: str, node: str, force: bool) -> NodeAnswer: ...
    async def switch_node(self, kubeconfig: str, node: str, state: str) -> dict[str, Any]: ...
    async def label_node(self, kubeconfig: str, node: str, label: str, opt: str) -> dict[str, Any]: ...

    # -- cluster ---------------------------------------------------------------------------------------
    async def cluster_pods(self, kubeconfig: str, read_seconds: float | None = None) -> list[dict[str, Any]]: ...
    async def cluster_nodes(self, kubeconfig: str, read_seconds: float | None = None) -> list[dict[str, Any]]: ...
    async def capacity(
        self, kubeconfig: str, products_json: str, read_seconds: float | None = None
    ) -> list[dict[str, Any]]: ...
    async def apply_instance(self, kubeconfig: str, params: Mapping[str, str]) -> dict[str, Any]: ...
    async def delete_instance(self, kubeconfig: str, params: Mapping[str, str]) -> dict[str, Any]: ...
    async def delete_manifests(self, kubeconfig: str, manifests_yaml: str) -> dict[str, Any]: ...


def pods_left(report: Any) -> str:
    """The pods a drain could not move, and why, as a node answer's message ends with them."""
    failed = report.get("failed") if isinstance(report, dict) else None
    return f" ({json.dumps(failed, ensure_ascii=False)[:800]})" if failed else ""
