"""Provisioning of kubeadm control planes and workers as ordered, idempotent, named steps over SSH.

    params = ProvisionParams.from_mapping(request_params, "master", host=target.host)
    async with connect(target, known_hosts=store, options=options) as ssh:
        outcome = await run_plan(ssh, plan_master(params), params, on_event=progress)

Each step is a shell script in `scripts/` (see `steps.py` and docs/provisioning.md); `runner.py` runs
them and reads their status; `routes.py` serves them to the platform (blocking or as server-sent events).
"""

from kboss.agent.provision.bundle import BundleUpload, upload_bundle
from kboss.agent.provision.joincmd import JoinCommand, parse_join_command
from kboss.agent.provision.params import ProvisionParams
from kboss.agent.provision.runner import (
    Event,
    OutputLine,
    PlanResult,
    StepFinished,
    StepResult,
    StepStarted,
    mask_secrets,
    run_plan,
    run_step,
)
from kboss.agent.provision.steps import ALL_STEPS, RESET, Step, plan, plan_master, plan_worker, step_for

__all__ = [
    "ALL_STEPS",
    "RESET",
    "BundleUpload",
    "Event",
    "JoinCommand",
    "OutputLine",
    "PlanResult",
    "ProvisionParams",
    "Step",
    "StepFinished",
    "StepResult",
    "StepStarted",
    "mask_secrets",
    "parse_join_command",
    "plan",
    "plan_master",
    "plan_worker",
    "run_plan",
    "run_step",
    "step_for",
    "upload_bundle",
]
