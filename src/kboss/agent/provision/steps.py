"""The provisioning steps: one shell script each, plus what kboss needs to know to run it.

A step's script observes the machine, acts only when needed, verifies its end condition and ends with
`kboss-step: changed|unchanged|skipped <why>`. It is sent to `bash -s` on stdin, behind the shared
functions of scripts/common.sh, and reads its parameters from KBOSS_* variables set by `env` on the
command line. Why piped and not uploaded: nothing is left behind on the machine, the text that runs is
exactly the text this kboss version ships, and one `sudo` covers it all.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources

from kboss.agent.provision.params import ProvisionParams, Role
from kboss.errors import InvalidParameter
from kboss.wire import plan as provision_plan

_MODE = ("KBOSS_INSTALL_MODE", "KBOSS_BUNDLE")
SECRET_VARIABLES = frozenset({"KBOSS_JOIN_TOKEN", "KBOSS_JOIN_CERT_KEY"})
# Constant text (no values in it). bash's `read` takes one byte at a time from a pipe, so the script
# that follows the secrets on stdin is left whole for `bash -s`. The keys are fixed by kboss and the
# values validated (no newlines), so `export "KEY=value"` assigns and never evaluates.
_READ_SECRETS_THEN_SCRIPT = (
    'while IFS= read -r kboss_line && [ -n "$kboss_line" ]; do export "$kboss_line"; done; exec bash -s'
)
_JOIN = (
    "KBOSS_JOIN_ENDPOINT",
    "KBOSS_JOIN_TOKEN",
    "KBOSS_JOIN_CA_HASH",
    "KBOSS_JOIN_CONTROL_PLANE",
    "KBOSS_JOIN_CERT_KEY",
)


@cache
def script_text(file_name: str) -> str:
    return (resources.files("kboss.agent.provision") / "scripts" / file_name).read_text()


@dataclass(frozen=True)
class Step:
    """A step of the plan (`kboss.wire.plan`: its name, time and place) with its script and the variables it reads."""

    name: str
    summary: str
    reads: tuple[str, ...] = ()  # the KBOSS_* variables the script reads

    @property
    def planned(self) -> provision_plan.PlannedStep:
        return provision_plan.BY_NAME[self.name]

    @property
    def timeout(self) -> float:
        return self.planned.seconds

    @property
    def file_name(self) -> str:
        return f"{self.name}.sh"

    def text(self) -> str:
        """The script: the shared functions, then the step."""
        return script_text("common.sh") + "\n" + script_text(self.file_name)

    def command(self, params: ProvisionParams) -> list[str]:
        """`env KBOSS_...=... bash -c <read secrets from stdin; exec bash -s>`: values travel as
        environment, never as script text.

        `env` on the command line rather than SSH environment passing: sshd accepts only what AcceptEnv
        lists, and sudo resets the environment anyway. Secrets (a join token) are not put there: command
        lines are visible in `ps` and logged by sudo to the machine's auth.log. They come first on stdin.
        """
        values = params.environment()
        public = [f"{key}={values[key]}" for key in self.reads if key not in SECRET_VARIABLES]
        return ["env", *public, "bash", "-c", _READ_SECRETS_THEN_SCRIPT]

    def stdin(self, params: ProvisionParams) -> str:
        """`KEY=value` lines of the secret variables the step reads, an empty line, then the script."""
        values = params.environment()
        secrets = [f"{key}={values[key]}\n" for key in self.reads if key in SECRET_VARIABLES]
        return "".join(secrets) + "\n" + self.text()

    def timeout_for(self, params: ProvisionParams) -> float:
        return self.timeout + (params.wait_timeout if self.planned.waits else 0)


PREFLIGHT = Step(
    "preflight",
    "Ubuntu 22.04, valid node name, swap off (now and in /etc/fstab), overlay and br_netfilter loaded, "
    "bridge and forwarding sysctls",
    ("KBOSS_ALLOW_UNSUPPORTED_OS",),
)
CONTAINER_RUNTIME = Step(
    "container_runtime",
    "containerd installed, config.toml with SystemdCgroup = true and the sandbox image, enabled and running",
    (*_MODE, "KBOSS_SANDBOX_IMAGE"),
)
KUBERNETES_PACKAGES = Step(
    "kubernetes_packages",
    "kubelet, kubeadm, kubectl of the requested version installed and held; kubelet enabled",
    (*_MODE, "KBOSS_K8S_MINOR", "KBOSS_K8S_PATCH"),
)
IMAGES = Step(
    "images",
    "the images kubeadm needs present in containerd (imported from the bundle or pulled)",
    ("KBOSS_ROLE", *_MODE, "KBOSS_K8S_PATCH", "KBOSS_IMAGE_REPOSITORY", "KBOSS_SANDBOX_IMAGE", "KBOSS_CRI_SOCKET"),
)
GPU_RUNTIME = Step(
    "gpu_runtime",
    "with an NVIDIA GPU: container toolkit installed, nvidia as containerd's default runtime",
    ("KBOSS_GPU", *_MODE),
)
KUBEADM_INIT = Step(
    "kubeadm_init",
    "kubeadm init (pod network 10.244.0.0/16) unless admin.conf exists and the API answers",
    (
        "KBOSS_ADVERTISE_ADDRESS",
        "KBOSS_ADVERTISE_STRICT",
        "KBOSS_POD_CIDR",
        "KBOSS_K8S_PATCH",
        "KBOSS_IMAGE_REPOSITORY",
        "KBOSS_CRI_SOCKET",
    ),
)
NETWORK_PLUGIN = Step("network_plugin", "flannel applied unless its DaemonSet exists", (*_MODE, "KBOSS_FLANNEL_URL"))
GPU_DEVICE_PLUGIN = Step(
    "gpu_device_plugin",
    "NVIDIA device plugin DaemonSet applied (GPU machine, or with_device_plugin)",
    ("KBOSS_GPU", "KBOSS_DEVICE_PLUGIN", *_MODE, "KBOSS_DEVICE_PLUGIN_URL"),
)
WAIT_READY = Step("wait_ready", "the node reports Ready (kubectl wait)", ("KBOSS_WAIT_TIMEOUT",))
FETCH_CREDENTIALS = Step(
    "fetch_credentials", "a join command (fresh bootstrap token) and the admin kubeconfig", ("KBOSS_TOKEN_TTL",)
)
KUBEADM_JOIN = Step("kubeadm_join", "kubeadm join unless kubelet.conf exists", (*_JOIN, "KBOSS_CRI_SOCKET"))
RESET = Step(
    "reset",
    "kubeadm reset --force, CNI configuration and interfaces removed, root's kubeconfig removed, containerd restarted",
    ("KBOSS_CRI_SOCKET",),
)

_BY_NAME = {step.name: step for step in (
    PREFLIGHT, CONTAINER_RUNTIME, KUBERNETES_PACKAGES, IMAGES, GPU_RUNTIME, KUBEADM_INIT, NETWORK_PLUGIN,
    GPU_DEVICE_PLUGIN, WAIT_READY, FETCH_CREDENTIALS, KUBEADM_JOIN, RESET,
)}  # fmt: skip
MASTER_STEPS = tuple(_BY_NAME[s.name] for s in provision_plan.MASTER)
WORKER_STEPS = tuple(_BY_NAME[s.name] for s in provision_plan.WORKER)
ALL_STEPS = {name: _BY_NAME[name] for name in provision_plan.BY_NAME}


def plan_master(params: ProvisionParams) -> list[Step]:
    return [_BY_NAME[s.name] for s in provision_plan.plan_for("master", params.gpu)]


def plan_worker(params: ProvisionParams) -> list[Step]:
    return [_BY_NAME[s.name] for s in provision_plan.plan_for("worker", params.gpu)]


def plan(params: ProvisionParams) -> list[Step]:
    return plan_master(params) if params.role == "master" else plan_worker(params)


def step_for(name: str, role: Role) -> Step:
    """A step of the role's plan, by name, for running it on its own."""
    steps = MASTER_STEPS if role == "master" else WORKER_STEPS
    for step in steps:
        if step.name == name:
            return step
    if name in ALL_STEPS:
        raise InvalidParameter("role", f"步骤 {name} 不属于 {role} 的计划")
    known = ", ".join(step.name for step in steps)
    raise InvalidParameter("name", f"未知步骤 {name[:40]!r}; {role} 的步骤: {known}")
