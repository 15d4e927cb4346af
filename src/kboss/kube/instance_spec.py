"""The parameters of a container instance (`source_*`), validated into an `InstanceSpec`.

`InstanceSpec.from_params` validates the `source_*` parameters of `yaml_apply_delete` / `new_cpcpodyaml`,
each failure an InvalidParameter naming the field; `build_objects` returns the objects in apply order and
`object_refs` what to delete. Every user string lands in a data field (a label, a port, an env value taken
from the Secret `<id>-credentials`); the one shell script is a constant reading them from env vars.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from kboss.errors import InvalidParameter, MissingParameter
from kboss.kube.labels import (  # the naming rules live with the other name rules, and are public here too
    controller_name,
    instance_name,
    is_dns1035_label,
    is_dns1123_label,
    is_dns1123_subdomain,
    namespace_name,
    parse_instance_label,
    parse_selector,
    service_name,
    serviceaccount_name,
    validate_label_value,
)
from kboss.kube.quantity import cpu_millicores, memory_bytes

InstanceType = Literal["LinuxOS", "RelationalDB", "Jupyter"]
Engine = Literal["StatefulSet", "Deployment", "DaemonSet", "Job", "CronJob", "Standalone"]
PortMode = Literal["NodePort", "LoadBalancer", "Ingress"]
RestartPolicy = Literal["Always", "OnFailure", "Never"]
Manifest = dict[str, Any]

INSTANCE_TYPES: tuple[str, ...] = ("LinuxOS", "RelationalDB", "Jupyter")
ENGINES: tuple[str, ...] = ("StatefulSet", "Deployment", "DaemonSet", "Job", "CronJob", "Standalone")
PORT_MODES: tuple[str, ...] = ("NodePort", "LoadBalancer", "Ingress")
# The API server accepts only Always for long-running controllers, and refuses Always for Jobs.
RESTART_POLICIES: dict[str, tuple[str, ...]] = {
    "StatefulSet": ("Always",),
    "Deployment": ("Always",),
    "DaemonSet": ("Always",),
    "Job": ("OnFailure", "Never"),
    "CronJob": ("OnFailure", "Never"),
    "Standalone": ("Always", "OnFailure", "Never"),
}
DEFAULT_IMAGES: dict[str, str] = {
    "LinuxOS": "docker.io/library/ubuntu:22.04",
    "RelationalDB": "docker.io/library/mysql:8.0",
    "Jupyter": "docker.io/jupyter/base-notebook:latest",
}
DEFAULT_PORTS: dict[str, int] = {"LinuxOS": 22, "RelationalDB": 3306, "Jupyter": 8888}
DEFAULT_MOUNTS: dict[str, str] = {
    "LinuxOS": "/mnt/data",
    "RelationalDB": "/var/lib/mysql",
    "Jupyter": "/home/jovyan/work",
}
CONTAINER_NAMES: dict[str, str] = {"LinuxOS": "ubuntu", "RelationalDB": "mysql", "Jupyter": "jupyter"}
DEFAULT_SCHEDULE = "0 * * * *"
LABEL_INSTANCE, LABEL_MANAGED_BY, MANAGED_BY = "app.kubernetes.io/instance", "app.kubernetes.io/managed-by", "kboss"
ANNOTATION_ID, ANNOTATION_NAME = "kboss.io/instance-id", "kboss.io/name"
MAX_REPLICAS, MAX_GPUS = 100, 64
MIN_MEMORY = 6 * 2**20  # runc refuses a memory limit below 6Mi: say so now rather than when the pod fails
NODE_PORTS = range(30000, 32768)
_SYSTEM_DIRS = frozenset(
    {
        "/",
        "/bin",
        "/boot",
        "/dev",
        "/etc",
        "/lib",
        "/lib64",
        "/proc",
        "/run",
        "/sbin",
        "/sys",
        "/usr",
        "/var",
        "/var/lib",
        "/tmp",
    }
)  # a volume there breaks the container
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_IMAGE = re.compile(
    rf"(?:[A-Za-z0-9][A-Za-z0-9.-]*(?::[0-9]{{1,5}})?/)?{_COMPONENT}(?:/{_COMPONENT})*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[a-f0-9]{64})?"
)
_CONTROLLER = re.compile(r"[a-z0-9](?:[-a-z0-9]{0,50}[a-z0-9])?")  # StatefulSet and CronJob names: ≤ 52
_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_USER = re.compile(r"[a-z_][a-z0-9_-]{0,31}")
_PATH = re.compile(r"(?:/[A-Za-z0-9._-]+)+/?")
_CRON_FIELD = re.compile(r"[0-9A-Za-z*/,?-]+")
_CRON_MACROS = frozenset({"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"})
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SHELL = re.compile(r"[;|&$`<>\\'\"(){}\[\]*?!#~]")
# Constant: the user name and password come from env vars filled from the Secret. Creates the user when it is
# not root, sets the password, then waits (trapping TERM so the pod stops at once rather than after 30 s).
LINUX_SCRIPT = """set -eu
if ! id -u "$AUTH_USER" >/dev/null 2>&1; then useradd --create-home --shell /bin/bash "$AUTH_USER"; fi
printf '%s:%s\\n' "$AUTH_USER" "$AUTH_PASSWORD" | chpasswd
trap 'exit 0' TERM INT
sleep infinity &
wait
"""


class InstanceSpec(BaseModel):
    """A validated instance, in Kubernetes units (millicores, bytes). Build it with `from_params`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    instance_id: str = Field(pattern=_ID.pattern)
    display_name: str = ""
    instance_type: InstanceType
    engine: Engine
    image: str
    replicas: int = Field(default=1, ge=1, le=MAX_REPLICAS)
    auth_user: str
    auth_password: SecretStr  # a printed or logged spec shows "**********"
    cpu_millicores: int = Field(gt=0)
    memory_bytes: int = Field(ge=MIN_MEMORY)
    gpu: int = Field(default=0, ge=0, le=MAX_GPUS)
    gpu_model: str = ""
    ephemeral_bytes: int = Field(default=0, ge=0)
    storage_bytes: int = Field(default=0, ge=0)
    mount_path: str
    self_label: tuple[str, str] | None = None
    node_selector: dict[str, str] = Field(default_factory=dict)
    port_mode: PortMode = "NodePort"
    restart_policy: RestartPolicy
    api_port: int = Field(ge=1, le=65535)
    inside_port: int = Field(ge=1, le=65535)
    outside_port: int | None = Field(default=None, ge=NODE_PORTS.start, le=NODE_PORTS.stop - 1)
    schedule: str = DEFAULT_SCHEDULE
    ingress_host: str = ""
    namespace: str
    service_account: str
    controller: str
    service: str

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> InstanceSpec:
        """Validate request parameters (strings or JSON values); each problem names its parameter."""
        return cls(**_Reader(params).values())

    @property
    def name(self) -> str:
        """The instance's own name: value of its instance label, prefix of its Secret, PVC and Ingress."""
        return instance_name(self.instance_id)

    @property
    def secret_name(self) -> str:
        return f"{self.name}-credentials"

    @property
    def pvc_name(self) -> str:
        return f"{self.name}-data"


class _Reader:
    """Reads one parameter at a time, so that each error names the parameter the caller sent."""

    def __init__(self, params: Mapping[str, Any]) -> None:
        self.params = params

    def display_name(self) -> str:
        # Only shown to people, yet refused when it looks like a shell command: nobody names an instance so.
        name = self.text("source_name", "")
        if _SHELL.search(name):
            raise InvalidParameter("source_name", f"{name[:60]!r} 含有不允许的字符 (如 ; | & $ ` < > 引号 括号)")
        return name

    def text(self, name: str, default: str | None = None) -> str:
        value = self.params.get(name)
        text = "" if value is None else str(value).strip()
        if text and (_CONTROL.search(text) or len(text) > 253):
            raise InvalidParameter(name, "含有控制字符或过长")
        if text or default is not None:
            return text or (default or "")
        raise MissingParameter(name)

    def choice(self, name: str, choices: tuple[str, ...], default: str | None = None) -> str:
        value = self.text(name, default)
        if value not in choices:
            raise InvalidParameter(name, f"应为 {'/'.join(choices)} 之一,收到 {value[:40]!r}")
        return value

    def integer(self, name: str, low: int, high: int, default: int | None = None) -> int:
        text = self.text(name, None if default is None else str(default))
        if not re.fullmatch(r"[0-9]{1,9}", text) or not low <= int(text) <= high:
            raise InvalidParameter(name, f"应为 {low} 到 {high} 之间的整数,收到 {text[:40]!r}")
        return int(text)

    def checked(self, name: str, default: str, check: Callable[[str], object], rule: str) -> str:
        value = self.text(name, default)
        if value and not check(value):
            raise InvalidParameter(name, f"{value[:80]!r} {rule}")
        return value

    def size(self, name: str) -> int:
        """Bytes. A bare number is in Gi, the unit the spec uses for disks; empty or 0 means none."""
        text = self.text(name, "0")
        return memory_bytes(f"{text}Gi" if re.fullmatch(r"[0-9.]+", text) else text, name)

    def values(self) -> dict[str, Any]:
        kind = self.choice("instance_type", INSTANCE_TYPES)
        engine = self.choice("source_podengine", ENGINES)
        inside = self.integer("source_insideport", 1, 65535, DEFAULT_PORTS[kind])
        port_mode = self.choice("source_portmode", PORT_MODES, "NodePort")
        values = {
            "instance_type": kind,
            "engine": engine,
            "port_mode": port_mode,
            "inside_port": inside,
            "api_port": self.integer("source_apiport", 1, 65535, inside),
            "outside_port": self.outside_port(port_mode),
            "display_name": self.display_name(),
            "image": self.checked("pod_imagepath", DEFAULT_IMAGES[kind], _IMAGE.fullmatch, "不是合法的镜像地址"),
            "replicas": self.integer("source_replicasetnum", 1, MAX_REPLICAS, 1),
            "auth_user": self.checked("source_authuser", "root", _USER.fullmatch, "应为小写字母、数字、_- (最长 32)"),
            "auth_password": self.password(),
            "cpu_millicores": self.amount("source_cpurate", cpu_millicores, 1, "应大于 0,如 500m 或 2"),
            "memory_bytes": self.amount("source_memrate", memory_bytes, MIN_MEMORY, "至少 6Mi,请带单位,如 512Mi"),
            **self.gpu(),
            "ephemeral_bytes": self.size("disk_sys_limit"),
            "storage_bytes": self.size("source_storagelimits"),
            "mount_path": self.mount_path(DEFAULT_MOUNTS[kind]),
            "restart_policy": self.restart_policy(engine),
            "schedule": self.schedule() if engine == "CronJob" else DEFAULT_SCHEDULE,
            "ingress_host": self.checked("source_ingresshost", "", _is_host, "不是合法的域名"),
            **self.labels(),
            **self.names(engine),
        }
        _check_combination(values)
        return values

    def password(self) -> str:
        text = str(self.params.get("source_authpasswd") or "")  # not stripped: blanks may be part of it
        if not text.strip():
            raise MissingParameter("source_authpasswd")
        if not 8 <= len(text) <= 128 or _CONTROL.search(text):
            raise InvalidParameter("source_authpasswd", "长度应为 8-128 个字符,且不含控制字符")
        return text

    def amount(self, name: str, parse: Callable[[str, str], int], minimum: int, problem: str) -> int:
        amount = parse(self.text(name), name)
        if amount < minimum:
            raise InvalidParameter(name, problem)
        return amount

    def gpu(self) -> dict[str, Any]:
        cards = self.integer("source_gpu", 0, MAX_GPUS, 0)
        model = self.text("gpu_model", "") if cards else ""
        if model:  # it becomes a node affinity value, so it must be one once blanks are dashes
            validate_label_value(re.sub(r"[\s_-]+", "-", model), "gpu_model")
        return {"gpu": cards, "gpu_model": model}

    def mount_path(self, default: str) -> str:
        path = self.text("source_mountpath", default)
        if not _PATH.fullmatch(path) or {".", ".."} & set(path.split("/")):
            raise InvalidParameter("source_mountpath", f"{path[:80]!r} 应为绝对路径,如 /mnt/data")
        path = path.rstrip("/")
        if path in _SYSTEM_DIRS or path.startswith(("/proc/", "/sys/", "/dev/")):
            raise InvalidParameter("source_mountpath", f"不能挂载到系统目录 {path}")
        return path

    def restart_policy(self, engine: str) -> str:
        allowed = RESTART_POLICIES[engine]
        policy = self.choice("source_restartpolicy", ("Always", "OnFailure", "Never"), allowed[0])
        if policy not in allowed:
            raise InvalidParameter("source_restartpolicy", f"{engine} 只支持 {'/'.join(allowed)},收到 {policy}")
        return policy

    def schedule(self) -> str:
        schedule = " ".join(self.text("source_schedule", DEFAULT_SCHEDULE).split())
        fields = schedule.split(" ")
        if schedule not in _CRON_MACROS and (len(fields) != 5 or not all(map(_CRON_FIELD.fullmatch, fields))):
            raise InvalidParameter("source_schedule", f"{schedule[:80]!r} 应为 5 段 cron 表达式,如 0 * * * *")
        return schedule

    def labels(self) -> dict[str, Any]:
        text = self.text("source_selflabel", "")
        label = parse_instance_label(text, "source_selflabel") if text else None
        if label and label[0] in (LABEL_INSTANCE, LABEL_MANAGED_BY):
            raise InvalidParameter("source_selflabel", f"标签键 {label[0]} 由 kboss 保留")
        selector = parse_selector(self.text("source_nodeselector", ""), "source_nodeselector")
        return {"self_label": label, "node_selector": selector}

    def outside_port(self, port_mode: str) -> int | None:
        if port_mode == "Ingress" or not self.text("source_outsideport", ""):
            return None  # a ClusterIP Service has no node port; without one Kubernetes picks a free port
        return self.integer("source_outsideport", NODE_PORTS.start, NODE_PORTS.stop - 1)

    def instance_id(self, engine: str) -> str:
        # yaml_apply_delete sends the names, not the id; the controller is named `<id>-<engine>`.
        name = "id" if self.text("id", "") else "instance_id"
        given = self.text(name, "") or self.text("podcd_name", "").removesuffix(f"-{engine.lower()}")
        if not given:
            raise MissingParameter("id")
        if not _ID.fullmatch(given) or not instance_name(given):
            raise InvalidParameter(name, f"{given[:80]!r} 不是合法的实例 ID")
        return given

    def names(self, engine: str) -> dict[str, str]:
        """The names the platform sent (yaml_apply_delete), else derived from the ids as the platform does."""
        instance_id = self.instance_id(engine)
        namespace = self.text("namespace_name", "") or namespace_name(self.text("clusterid"), self.text("orgid"))
        if not is_dns1123_label(namespace):
            raise InvalidParameter("namespace_name", f"{namespace[:80]!r} 不是合法的 RFC 1123 名称")
        account = serviceaccount_name(namespace)
        return {
            "instance_id": instance_id,
            "namespace": namespace,
            "service_account": self.checked("serviceaccount_name", account, is_dns1123_subdomain, "不是合法的名称"),
            "controller": self.checked(
                "podcd_name",
                controller_name(instance_id, engine),
                _CONTROLLER.fullmatch,
                "应为最长 52 个字符的 RFC 1123 名称",
            ),
            "service": self.checked(
                "service_name", service_name(instance_id), is_dns1035_label, "应为字母开头的 RFC 1035 名称"
            ),
        }


def _is_host(host: str) -> bool:
    return is_dns1123_subdomain(host.removeprefix("*."))


def _check_combination(values: Mapping[str, Any]) -> None:
    """Refuse what the API would accept but could not work. A ReadWriteOnce volume cannot follow pods across
    nodes: a Deployment with a volume runs one replica, a DaemonSet takes none (StatefulSets get one each)."""
    engine, storage = values["engine"], values["storage_bytes"]
    if engine == "DaemonSet" and storage:
        problem = "DaemonSet 在每个节点运行,不能共用一块 ReadWriteOnce 存储盘;请设为 0 或改用 StatefulSet"
        raise InvalidParameter("source_storagelimits", problem)
    if engine == "Deployment" and storage and values["replicas"] > 1:
        raise InvalidParameter("source_replicasetnum", "带存储盘的 Deployment 只能有 1 个副本;多副本请用 StatefulSet")
    if values["port_mode"] == "Ingress" and values["instance_type"] == "RelationalDB":
        raise InvalidParameter("source_portmode", "Ingress 只转发 HTTP,MySQL 请用 NodePort 或 LoadBalancer")
