"""The provisioning plan, declared once: which steps build a control plane or a worker, in which order, and how
long each may take. The site agent runs these steps (`kboss.agent.provision.steps` gives each its script and
variables); the platform's operations allot the same time to each (`kboss.clusters.plan`), whether the center is
served by an agent or simulated.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

Role = Literal["master", "worker"]
# A step that waits (wait_ready) may be asked to wait up to this long on top of its own time.
MAX_WAIT_SECONDS: Final = 3600


@dataclass(frozen=True)
class PlannedStep:
    name: str
    seconds: float  # for the whole script; generous, since apt mirrors and registries can be slow
    waits: bool = False  # the step waits up to the `wait_timeout` parameter on top of `seconds`
    gpu: bool = False  # left out of the plan of a build asked for with gpu=off

    @property
    def longest(self) -> float:
        """The most this step may take, whatever it is asked to wait for."""
        return self.seconds + (MAX_WAIT_SECONDS if self.waits else 0)


PREFLIGHT = PlannedStep("preflight", 300)
CONTAINER_RUNTIME = PlannedStep("container_runtime", 1200)
KUBERNETES_PACKAGES = PlannedStep("kubernetes_packages", 1200)
IMAGES = PlannedStep("images", 1800)
GPU_RUNTIME = PlannedStep("gpu_runtime", 1200, gpu=True)
KUBEADM_INIT = PlannedStep("kubeadm_init", 900)
NETWORK_PLUGIN = PlannedStep("network_plugin", 300)
GPU_DEVICE_PLUGIN = PlannedStep("gpu_device_plugin", 300, gpu=True)
WAIT_READY = PlannedStep("wait_ready", 60, waits=True)
FETCH_CREDENTIALS = PlannedStep("fetch_credentials", 120)
KUBEADM_JOIN = PlannedStep("kubeadm_join", 900)
RESET = PlannedStep("reset", 600)

MASTER: Final = (
    PREFLIGHT, CONTAINER_RUNTIME, KUBERNETES_PACKAGES, IMAGES, GPU_RUNTIME, KUBEADM_INIT, NETWORK_PLUGIN,
    GPU_DEVICE_PLUGIN, WAIT_READY, FETCH_CREDENTIALS,
)  # fmt: skip
WORKER: Final = (PREFLIGHT, CONTAINER_RUNTIME, KUBERNETES_PACKAGES, IMAGES, GPU_RUNTIME, KUBEADM_JOIN)
BY_NAME: Final = {step.name: step for step in (*MASTER, *WORKER, RESET)}


def steps_of(role: Role) -> tuple[PlannedStep, ...]:
    return MASTER if role == "master" else WORKER


def plan_for(role: Role, gpu: str) -> list[PlannedStep]:
    """The role's plan; with gpu=off the GPU steps would only report "skipped", so they are left out."""
    return [step for step in steps_of(role) if gpu != "off" or not step.gpu]
