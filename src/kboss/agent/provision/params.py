"""Provisioning parameters: validated once, in Python, before anything reaches a machine.

Each value ends up in a KBOSS_* environment variable of a step script (see `environment`), so each is
checked against a narrow pattern here: scripts then use them as data only, and errors name the
parameter as the caller spelled it.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from kboss.agent import targets
from kboss.agent.provision.joincmd import JoinCommand, parse_join_command
from kboss.errors import InvalidParameter, MissingParameter

Role = Literal["master", "worker"]
InstallMode = Literal["online", "offline"]
GpuMode = Literal["auto", "on", "off"]

DEFAULT_KUBERNETES_VERSION = "v1.30"
POD_CIDR = "10.244.0.0/16"  # flannel's default network: no manifest patching needed
CRI_SOCKET = "unix:///run/containerd/containerd.sock"
SANDBOX_IMAGE = "pause:3.9"  # the pause image kubeadm 1.30 expects, under the image repository
DEFAULT_IMAGE_REPOSITORY = "registry.k8s.io"
FLANNEL_URL = "https://github.com/flannel-io/flannel/releases/download/v0.25.5/kube-flannel.yml"
DEVICE_PLUGIN_URL = (
    "https://raw.githubusercontent.com/NVIDIA/k8s-device-plugin/v0.15.0/deployments/static/nvidia-device-plugin.yml"
)

_ROLE_WORDS: dict[str, Role] = {"master": "master", "control-plane": "master", "worker": "worker", "node": "worker"}
_GPU_WORDS: dict[str, GpuMode] = {"auto": "auto", "on": "on", "true": "on", "1": "on", "off": "off", "false": "off"}
_VERSION = re.compile(r"v?1\.(\d{1,2})(?:\.(\d{1,3}))?")
_REMOTE_PATH = re.compile(r"/[A-Za-z0-9._/-]{0,250}")
_REPOSITORY = re.compile(r"[a-z0-9][a-z0-9.-]{0,200}(?::\d{1,5})?(?:/[a-z0-9._-]{1,100}){0,5}")
_IMAGE = re.compile(r"[a-z0-9][A-Za-z0-9._:/@-]{0,250}")
_URL = re.compile(r"https://[A-Za-z0-9.-]{1,200}(?::\d{1,5})?/[A-Za-z0-9._~/%+-]{0,500}")
_DURATION = re.compile(r"(?=\d)(\d{1,4}h)?(\d{1,4}m)?(\d{1,6}s)?")


def remote_path(value: str, name: str) -> str:
    """An absolute path on the machine without `..` or characters a shell or awk would interpret."""
    if not _REMOTE_PATH.fullmatch(value) or ".." in value.split("/"):
        raise InvalidParameter(name, "应为绝对路径, 只含字母、数字和 . _ - /")
    return value.rstrip("/") or "/"


def _choice(params: Mapping[str, Any], name: str, words: Mapping[str, str], default: str) -> str:
    raw = targets.text(params, name, required=False).strip().lower() or default
    if raw not in words:
        raise InvalidParameter(name, f"应为 {' / '.join(sorted(set(words.values())))} 之一")
    return words[raw]


def _matching(params: Mapping[str, Any], name: str, pattern: re.Pattern[str], default: str, what: str) -> str:
    value = targets.text(params, name, required=False).strip() or default
    if value and not pattern.fullmatch(value):
        raise InvalidParameter(name, what)
    return value


def _version(params: Mapping[str, Any]) -> tuple[str, str]:
    """(minor, patch): ("v1.30", "") for v1.30, ("v1.30", "1.30.4") for v1.30.4."""
    raw = targets.text(params, "kubernetes_version", required=False).strip() or DEFAULT_KUBERNETES_VERSION
    match = _VERSION.fullmatch(raw)
    if not match:
        raise InvalidParameter("kubernetes_version", "应为 v1.30 或 v1.30.4 这样的版本号")
    minor = f"v1.{int(match.group(1))}"
    return minor, f"1.{int(match.group(1))}.{int(match.group(2))}" if match.group(2) else ""


def _seconds(params: Mapping[str, Any], name: str, default: int) -> int:
    raw = targets.text(params, name, required=False).strip()
    if not raw:
        return default
    if not raw.isdigit() or not 10 <= int(raw) <= 3600:
        raise InvalidParameter(name, "应为 10-3600 的秒数")
    return int(raw)


def _advertise(params: Mapping[str, Any], host: str) -> tuple[str, bool]:
    """The API server's address: explicit (must be on the machine), else the SSH host when it is an IP."""
    raw = targets.text(params, "advertise_address", required=False).strip()
    candidate = raw or host
    try:
        return str(ipaddress.ip_address(candidate)), bool(raw)
    except ValueError:
        if raw:
            raise InvalidParameter("advertise_address", "应为本机的 IP 地址") from None
        return "", False


@dataclass(frozen=True)
class ProvisionParams:
    role: Role
    host: str = ""
    install_mode: InstallMode = "online"
    bundle: str = ""
    kubernetes_minor: str = DEFAULT_KUBERNETES_VERSION
    kubernetes_patch: str = ""
    image_repository: str = ""
    sandbox_image: str = f"{DEFAULT_IMAGE_REPOSITORY}/{SANDBOX_IMAGE}"
    gpu: GpuMode = "auto"
    with_device_plugin: bool = False
    allow_unsupported_os: bool = False
    advertise_address: str = ""
    advertise_strict: bool = False
    wait_timeout: int = 300
    token_ttl: str = "24h0m0s"
    flannel_url: str = FLANNEL_URL
    device_plugin_url: str = DEVICE_PLUGIN_URL
    join: JoinCommand | None = field(default=None, repr=False)

    @classmethod
    def from_mapping(
        cls, params: Mapping[str, Any], role: Role, *, host: str = "", need_join: bool = False
    ) -> ProvisionParams:
        """Validate the request's parameters; `host` is the SSH host (the default advertise address)."""
        mode = cast(InstallMode, _choice(params, "install_mode", {"online": "online", "offline": "offline"}, "online"))
        bundle = targets.text(params, "bundle", required=False).strip()
        if mode == "offline" and not bundle:
            raise MissingParameter("bundle")
        minor, patch = _version(params)
        repository = _matching(params, "image_repository", _REPOSITORY, "", "不是合法的镜像仓库地址")
        default_sandbox = f"{repository or DEFAULT_IMAGE_REPOSITORY}/{SANDBOX_IMAGE}"
        advertise, strict = _advertise(params, host)
        return cls(
            role=role,
            host=host,
            install_mode=mode,
            bundle=remote_path(bundle, "bundle") if bundle else "",
            kubernetes_minor=minor,
            kubernetes_patch=patch,
            image_repository=repository,
            sandbox_image=_matching(params, "sandbox_image", _IMAGE, default_sandbox, "不是合法的镜像名"),
            gpu=cast(GpuMode, _choice(params, "gpu", _GPU_WORDS, "auto")),
            with_device_plugin=targets.flag(params, "with_device_plugin"),
            allow_unsupported_os=targets.flag(params, "allow_unsupported_os"),
            advertise_address=advertise,
            advertise_strict=strict,
            wait_timeout=_seconds(params, "wait_timeout", 300),
            token_ttl=_matching(params, "token_ttl", _DURATION, "24h0m0s", "应为 24h0m0s 这样的时长"),
            flannel_url=_matching(params, "flannel_manifest_url", _URL, FLANNEL_URL, "应为 https 地址"),
            device_plugin_url=_matching(
                params, "device_plugin_manifest_url", _URL, DEVICE_PLUGIN_URL, "应为 https 地址"
            ),
            join=_join(params, need_join),
        )

    def environment(self) -> dict[str, str]:
        """Every KBOSS_* variable a step script may read (each step passes only those it declares)."""
        join = self.join
        return {
            "KBOSS_ROLE": self.role,
            "KBOSS_INSTALL_MODE": self.install_mode,
            "KBOSS_BUNDLE": self.bundle,
            "KBOSS_K8S_MINOR": self.kubernetes_minor,
            "KBOSS_K8S_PATCH": self.kubernetes_patch,
            "KBOSS_IMAGE_REPOSITORY": self.image_repository,
            "KBOSS_SANDBOX_IMAGE": self.sandbox_image,
            "KBOSS_GPU": self.gpu,
            "KBOSS_DEVICE_PLUGIN": "1" if self.with_device_plugin else "0",
            "KBOSS_ALLOW_UNSUPPORTED_OS": "1" if self.allow_unsupported_os else "0",
            "KBOSS_ADVERTISE_ADDRESS": self.advertise_address,
            "KBOSS_ADVERTISE_STRICT": "1" if self.advertise_strict else "0",
            "KBOSS_POD_CIDR": POD_CIDR,
            "KBOSS_CRI_SOCKET": (join.cri_socket if join else "") or CRI_SOCKET,
            "KBOSS_WAIT_TIMEOUT": str(self.wait_timeout),
            "KBOSS_TOKEN_TTL": self.token_ttl,
            "KBOSS_FLANNEL_URL": self.flannel_url,
            "KBOSS_DEVICE_PLUGIN_URL": self.device_plugin_url,
            "KBOSS_JOIN_ENDPOINT": join.endpoint if join else "",
            "KBOSS_JOIN_TOKEN": join.token if join else "",
            "KBOSS_JOIN_CA_HASH": join.ca_cert_hash if join else "",
            "KBOSS_JOIN_CONTROL_PLANE": "1" if join and join.control_plane else "0",
            "KBOSS_JOIN_CERT_KEY": join.certificate_key if join else "",
        }

    def secrets(self) -> list[str]:
        return self.join.secrets() if self.join else []


def _join(params: Mapping[str, Any], need: bool) -> JoinCommand | None:
    raw = targets.text(params, "join_command", required=need)
    return parse_join_command(raw) if raw.strip() else None


def parse_role(params: Mapping[str, Any], default: Role, *, allowed: tuple[Role, ...] = ("master", "worker")) -> Role:
    role = cast(Role, _choice(params, "role", _ROLE_WORDS, default))
    if role not in allowed:
        raise InvalidParameter("role", f"此接口只接受 {' / '.join(allowed)}")
    return role


def check_cluster_type(params: Mapping[str, Any]) -> None:
    """The spec's cluster_type: kubernetes (or the platform's code 0) is all kboss builds."""
    raw = targets.text(params, "cluster_type", required=False).strip().lower()
    if raw not in ("", "kubernetes", "k8s", "0"):
        raise InvalidParameter("cluster_type", "目前只支持 kubernetes")
