"""Provisioning routes of the site agent: the spec's new_cluster / new_worker, and native step-by-step calls.

A blocking call answers the spec's envelope when its plan ends. With `?stream=1` the answer is a chunked
`text/event-stream`: `step` events (started, finished), one `line` event per output line, comment
heartbeats while a step is silent, and a final `result` event holding the JSON the blocking call returns.
Every parameter is validated before anything runs; bad input answers `{"status": false, "info": ...}`
naming the parameter. One provisioning call at a time per machine and agent: a second gets a conflict.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from sse_starlette import EventSourceResponse, ServerSentEvent

from kboss.agent import targets
from kboss.agent.access import SiteState
from kboss.agent.api import NATIVE, PCAPI, Site, done
from kboss.agent.provision.bundle import upload_bundle
from kboss.agent.provision.joincmd import parse_join_command
from kboss.agent.provision.params import ProvisionParams, Role, check_cluster_type, parse_role, remote_path
from kboss.agent.provision.runner import Event, OutputLine, PlanResult, StepStarted, run_plan
from kboss.agent.provision.steps import KUBEADM_JOIN, RESET, Step, plan, plan_master, plan_worker, step_for
from kboss.errors import Conflict, InvalidParameter, KbossError
from kboss.logs import register_secret
from kboss.ssh import SshTarget, connect
from kboss.wire.jsonresp import EnvelopeResponse
from kboss.wire.params import Params

log = logging.getLogger("kboss.provision")
router = APIRouter(include_in_schema=False)
PROVISION = f"{NATIVE}/provision"
HEARTBEAT_SECONDS = 15.0
Answer = Callable[[PlanResult], dict[str, Any]]

DEFAULT_BUNDLE_DIR = "/var/lib/kboss/bundle"
_BUNDLE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,100}")
_busy: set[tuple[str, int]] = set()
_background: set[asyncio.Task[None]] = set()


@dataclass(frozen=True)
class Job:
    target: SshTarget
    params: ProvisionParams
    steps: list[Step]
    answer: Answer


def _job(
    params: Mapping[str, Any],
    role: Role,
    steps: Callable[[ProvisionParams], list[Step]],
    answer: Answer,
    *,
    need_join: bool = False,
) -> Job:
    target = targets.ssh_target(params)
    assert target is not None  # required=True raises instead
    provision = ProvisionParams.from_mapping(params, role, host=target.host, need_join=need_join)
    for secret in provision.secrets():
        register_secret(secret)  # e.g. a join token in an access log's query string
    return Job(target, provision, steps(provision), answer)


def _failure(outcome: PlanResult) -> dict[str, Any]:
    error = outcome.error or "未知错误"
    failed = outcome.failed
    data = {"failed_step": failed.name if failed else None, "error": error, "steps": outcome.summary()}
    return {"status": False, "info": f"operate failed: {error.splitlines()[0]}", "data": data}


def _cluster_answer(outcome: PlanResult) -> dict[str, Any]:
    """The spec's answer: the join command, a newline, the admin kubeconfig."""
    if not outcome.ok:
        return _failure(outcome)
    join, kubeconfig = outcome.secrets.get("join_command", ""), outcome.secrets.get("kubeconfig", "")
    try:
        register_secret(parse_join_command(join).token)
    except InvalidParameter:
        return {"status": False, "info": "operate failed: 控制节点返回的加入命令无法识别", "data": None}
    return {"status": True, "info": "operate success", "data": f"{join}\n{kubeconfig}"}


def _worker_answer(outcome: PlanResult) -> dict[str, Any]:
    return {"status": True, "info": "operate success", "data": ""} if outcome.ok else _failure(outcome)


def _step_answer(outcome: PlanResult) -> dict[str, Any]:
    """One step: its StepResult, including the secrets it produced (fetch_credentials)."""
    if not outcome.results:
        return _failure(outcome)
    result = outcome.results[0]
    info = "operate success" if result.ok else f"operate failed: {(result.error or '').splitlines()[0]}"
    return {"status": result.ok, "info": info, "data": result.as_dict(include_secrets=True)}


class MachineBusy(Conflict):
    """Another provisioning call of the platform still runs on this machine; the platform waits and asks again."""

    code = "machine_busy"


def _claim(target: SshTarget) -> None:
    key = (target.host, target.port)
    if key in _busy:
        raise MachineBusy(f"主机 {target.host}:{target.port} 正在执行另一个部署调用, 请等待其结束")
    _busy.add(key)


def _release(target: SshTarget) -> None:
    _busy.discard((target.host, target.port))


async def _execute(
    site: SiteState, job: Job, on_event: Callable[[Event], None] | None = None, stop: asyncio.Event | None = None
) -> PlanResult:
    async with connect(job.target, known_hosts=site.known_hosts, options=site.ssh_options) as ssh:
        return await run_plan(ssh, job.steps, job.params, on_event, stop=stop)


async def _respond(site: SiteState, job: Job, params: Mapping[str, Any]) -> Response:
    stream = targets.flag(params, "stream")
    _claim(job.target)
    if stream:
        return _event_stream(site, job)
    try:
        outcome = await _execute(site, job)
    finally:
        _release(job.target)
    return EnvelopeResponse(job.answer(outcome))


def _sse(event: str, data: Any) -> ServerSentEvent:
    return ServerSentEvent(json.dumps(data, ensure_ascii=False, default=str), event=event)


def _event_text(event: Event) -> ServerSentEvent:
    if isinstance(event, OutputLine):
        return _sse("line", {"step": event.step, "line": event.line})
    if isinstance(event, StepStarted):
        return _sse("step", {"step": event.step, "state": "started", "index": event.index, "total": event.total})
    return _sse("step", {"step": event.result.name, "state": "finished", **event.result.summary()})


def _event_stream(site: SiteState, job: Job) -> EventSourceResponse:
    queue: asyncio.Queue[ServerSentEvent | None] = asyncio.Queue()
    stop = asyncio.Event()
    # The plan runs in its own task: a client that goes away stops the plan between steps, not in the
    # middle of one (an apt or kubeadm run killed halfway is worse than one that finishes).
    task = asyncio.create_task(_produce(site, job, queue, stop))
    _background.add(task)
    task.add_done_callback(_background.discard)
    # A comment every HEARTBEAT_SECONDS while a step is silent: proxies close connections that stay quiet.
    return EventSourceResponse(_consume(queue, stop), ping=HEARTBEAT_SECONDS, sep="\n")


async def _produce(
    site: SiteState, job: Job, queue: asyncio.Queue[ServerSentEvent | None], stop: asyncio.Event
) -> None:
    try:
        outcome = await _execute(site, job, lambda event: queue.put_nowait(_event_text(event)), stop)
        body = job.answer(outcome)
    except KbossError as exc:
        body = {"status": False, "info": exc.message, "data": None}
    except Exception:
        log.exception("provisioning %s failed unexpectedly", job.target.host)
        body = {"status": False, "info": "服务器内部错误,请联系管理员查看日志", "data": None}
    finally:
        _release(job.target)
    queue.put_nowait(_sse("result", body))
    queue.put_nowait(None)


async def _consume(queue: asyncio.Queue[ServerSentEvent | None], stop: asyncio.Event) -> AsyncIterator[ServerSentEvent]:
    try:
        while (item := await queue.get()) is not None:
            yield item
    finally:
        stop.set()


@router.post(f"{PCAPI}/new_cluster")
async def new_cluster(site: Site, params: Params) -> Response:
    check_cluster_type(params)
    role = parse_role(params, "master", allowed=("master",))
    return await _respond(site, _job(params, role, plan_master, _cluster_answer), params)


@router.post(f"{PCAPI}/new_worker")
async def new_worker(site: Site, params: Params) -> Response:
    check_cluster_type(params)
    role = parse_role(params, "worker", allowed=("worker",))
    return await _respond(site, _job(params, role, plan_worker, _worker_answer, need_join=True), params)


@router.api_route(f"{PROVISION}/plan", methods=["GET", "POST"])
async def provision_plan(site: Site, params: Params) -> JSONResponse:
    """The ordered step names for these parameters. Needs no SSH account: send none (a GET query string
    ends up in access logs); POST is accepted for callers that send one form for everything."""
    role = parse_role(params, "master")
    provision = ProvisionParams.from_mapping(params, role)
    steps = [{"name": step.name, "summary": step.summary} for step in plan(provision)]
    return done("operate success", {"role": role, "steps": steps})


@router.post(f"{PROVISION}/steps/{{name}}")
async def provision_step(name: str, site: Site, params: Params) -> Response:
    role = parse_role(params, "worker" if name == KUBEADM_JOIN.name else "master")
    step = step_for(name, role)
    job = _job(params, role, lambda _: [step], _step_answer, need_join=step is KUBEADM_JOIN)
    return await _respond(site, job, params)


@router.post(f"{NATIVE}/node/reset")
async def node_reset(site: Site, params: Params) -> Response:
    return await _respond(site, _job(params, "worker", lambda _: [RESET], _step_answer), params)


@router.post(f"{PROVISION}/bundle")
async def provision_bundle(site: Site, params: Params) -> JSONResponse:
    """Copy an offline bundle kept by this agent (`<data dir>/bundles/<name>`) to the machine.

    Only bundles under the agent's own directory can be named: a free local path would let a caller
    copy any file the agent can read to a machine of their choice.
    """
    name = targets.text(params, "name").strip()
    if not _BUNDLE_NAME.fullmatch(name) or not (site.data_dir / "bundles" / name).is_dir():
        raise InvalidParameter("name", f"本站点没有名为 {name[:60]!r} 的离线包 (<data dir>/bundles/<name>)")
    remote = remote_path(targets.text(params, "bundle", required=False).strip() or DEFAULT_BUNDLE_DIR, "bundle")
    target = targets.ssh_target(params)
    assert target is not None
    _claim(target)
    try:
        async with connect(target, known_hosts=site.known_hosts, options=site.ssh_options) as ssh:
            report = await upload_bundle(ssh, site.data_dir / "bundles" / name, remote)
    finally:
        _release(target)
    return done("operate success", {"bundle": remote, "uploaded": report.uploaded, "unchanged": report.unchanged})
