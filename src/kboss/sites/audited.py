"""Every site call that changes a machine or a cluster, recorded in the audit trail (`kboss.audit`): a `Site` that
delegates to the real one (agent or simulated) and notes each changing call with its outcome.

Reads (plans, probes, pods, nodes, capacity) are not recorded. The events are written once the site is closed —
within an API request by the audit middleware after the answer, elsewhere (operation steps) by `flush` — never in
the middle of the caller's transaction (SQLite has one writer, and the caller may hold the write lock).
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from kboss.audit import trail
from kboss.errors import KbossError
from kboss.sites.protocol import FAILED, NodeAnswer, OnLine, Site, StepReport
from kboss.wire.plan import Role

T = TypeVar("T")


@dataclass
class AuditedSite:
    site: Site
    orgid: str
    center_id: str
    cluster_id: str = ""
    # Who asks when no request does (an operation's worker): e.g. `operation:<id>`.
    actor: str = ""
    # Where `__aexit__` writes the events when no request takes them (None: the caller calls `flush`).
    sessions: trail.Sessions | AsyncSession | None = None
    pending: list[trail.Event] = field(default_factory=list)

    async def __aenter__(self) -> AuditedSite:
        await self.site.__aenter__()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.site.__aexit__(kind, exc, tb)
        await self.settle(self.sessions)

    async def settle(self, sessions: trail.Sessions | AsyncSession | None) -> None:
        """Hand the events to the request being served (the middleware writes them after the answer, attributed
        to the caller), else write them to `sessions` (call when the site is closed, outside any open write)."""
        events, self.pending = self.pending, []
        note = trail.current()
        if note is not None:
            note.events.extend(events)
        elif sessions is not None:
            await trail.record(sessions, *events)

    async def _changes(self, call: str, target: tuple[str, str], work: Awaitable[T]) -> T:
        try:
            answer = await work
        except KbossError as exc:
            self._note(call, target, trail.outcome_of(exc.http_status), exc.code)
            raise
        except BaseException:
            self._note(call, target, trail.FAILED, "interrupted")
            raise
        failed = (isinstance(answer, StepReport) and answer.status == FAILED) or (
            isinstance(answer, NodeAnswer) and not answer.ok
        )
        self._note(call, target, trail.FAILED if failed else trail.OK, getattr(answer, "code", "") if failed else "")
        return answer

    def _note(self, call: str, target: tuple[str, str], outcome: str, code: str) -> None:
        detail = {"center_id": self.center_id, "cluster_id": self.cluster_id, "call": call}
        self.pending.append(
            trail.Event(
                trail.SITE_CALL, outcome=outcome, actor=self.actor or "system", orgid=self.orgid,
                target_type=target[0], target_id=target[1], address=trail.current_address(), code=code,
                detail=detail,
            )
        )  # fmt: skip

    # -- machines: provisioning changes a machine; planning and probing only read ---------------------
    async def plan(self, role: Role, options: Mapping[str, str]) -> list[str]:
        return await self.site.plan(role, options)

    async def run_step(self, name: str, form: Mapping[str, str], on_line: OnLine) -> StepReport:
        return await self._changes(
            f"step:{name}", ("machine", form.get("host", "")), self.site.run_step(name, form, on_line)
        )

    async def reset(self, form: Mapping[str, str], on_line: OnLine) -> StepReport:
        return await self._changes("reset", ("machine", form.get("host", "")), self.site.reset(form, on_line))

    async def probe(self, host: str, port: int, user: str, password: str, private_key: str) -> dict[str, Any]:
        return await self.site.probe(host, port, user, password, private_key)

    # -- nodes -----------------------------------------------------------------------------------------
    async def cordon(self, kubeconfig: str, node: str) -> NodeAnswer:
        return await self._changes("cordon", ("node", node), self.site.cordon(kubeconfig, node))

    async def drain(self, kubeconfig: str, node: str, seconds: int, force: bool = False) -> NodeAnswer:
        return await self._changes("drain", ("node", node), self.site.drain(kubeconfig, node, seconds, force))

    async def delete_node(self, kubeconfig: str, node: str, force: bool) -> NodeAnswer:
        return await self._changes("delete_node", ("node", node), self.site.delete_node(kubeconfig, node, force))

    async def switch_node(self, kubeconfig: str, node: str, state: str) -> dict[str, Any]:
        return await self._changes(f"switch:{state}", ("node", node), self.site.switch_node(kubeconfig, node, state))

    async def label_node(self, kubeconfig: str, node: str, label: str, opt: str) -> dict[str, Any]:
        return await self._changes(f"label:{opt}", ("node", node), self.site.label_node(kubeconfig, node, label, opt))

    # -- cluster ---------------------------------------------------------------------------------------
    async def cluster_pods(self, kubeconfig: str, read_seconds: float | None = None) -> list[dict[str, Any]]:
        return await self.site.cluster_pods(kubeconfig, read_seconds)

    async def cluster_nodes(self, kubeconfig: str, read_seconds: float | None = None) -> list[dict[str, Any]]:
        return await self.site.cluster_nodes(kubeconfig, read_seconds)

    async def capacity(
        self, kubeconfig: str, products_json: str, read_seconds: float | None = None
    ) -> list[dict[str, Any]]:
        return await self.site.capacity(kubeconfig, products_json, read_seconds)

    async def apply_instance(self, kubeconfig: str, params: Mapping[str, str]) -> dict[str, Any]:
        target = ("instance", params.get("id", ""))
        return await self._changes("apply_instance", target, self.site.apply_instance(kubeconfig, params))

    async def delete_instance(self, kubeconfig: str, params: Mapping[str, str]) -> dict[str, Any]:
        target = ("instance", params.get("id", ""))
        return await self._changes("delete_instance", target, self.site.delete_instance(kubeconfig, params))

    async def delete_manifests(self, kubeconfig: str, manifests_yaml: str) -> dict[str, Any]:
        target = ("cluster", self.cluster_id)
        return await self._changes("delete_manifests", target, self.site.delete_manifests(kubeconfig, manifests_yaml))
