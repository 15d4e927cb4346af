"""What a site-agent call targets: a machine over SSH, or a cluster by SSH to its master or by kubeconfig.

The spec's quirks are accepted here once: `psssword` (sic) or `password`, a `port` typed boolean in two tables
(it is an integer SSH port), `darin` (sic) or `drain`.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kboss.errors import InvalidParameter, MissingParameter
from kboss.ssh import SshTarget

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*")
_USER = re.compile(r"[a-z_][a-z0-9_.-]{0,31}")
TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("", "0", "false", "no", "off")


@dataclass(frozen=True)
class ClusterAccess:
    """How to reach a cluster's API: its kubeconfig, or SSH to the master to read admin.conf."""

    kubeconfig: str | None = None
    master: SshTarget | None = None


def text(params: Mapping[str, Any], name: str, *aliases: str, required: bool = True) -> str:
    for key in (name, *aliases):
        value = params.get(key)
        if isinstance(value, list | dict):  # a JSON body's value (e.g. `resources`): as the JSON text it was
            return json.dumps(value, ensure_ascii=False)
        if value is not None and str(value) != "":
            return str(value)
    if required:
        raise MissingParameter(name)
    return ""


def flag(params: Mapping[str, Any], name: str, *aliases: str) -> bool:
    used = next((key for key in (name, *aliases) if params.get(key) not in (None, "")), name)
    raw = text(params, name, *aliases, required=False).strip().lower()
    if raw in TRUE_WORDS:
        return True
    if raw in FALSE_WORDS:
        return False
    raise InvalidParameter(used, "应为 true 或 false")


_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
CLUSTER_TYPES = ("", "0", "kubernetes", "k8s")


def check_context(params: Mapping[str, Any]) -> None:
    """Parameters the agent does not act on but the platform sends: still refused when malformed."""
    cluster_type = text(params, "cluster_type", required=False).strip().lower()
    if cluster_type not in CLUSTER_TYPES:
        raise InvalidParameter("cluster_type", "目前只支持 kubernetes (0)")
    for name in ("cpcid", "clusterid"):
        value = text(params, name, required=False)
        if value and not _ID.fullmatch(value):
            raise InvalidParameter(name, f"{value[:40]!r} 不是合法的 ID")


def host(value: str, name: str) -> str:
    value = value.strip()
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        pass
    if not _HOSTNAME.fullmatch(value):
        raise InvalidParameter(name, f"{value[:80]!r} 不是合法的 IP 地址或主机名")
    return value


def port(value: str, name: str) -> int:
    if not re.fullmatch(r"\d{1,5}", value.strip()) or not 1 <= int(value) <= 65535:
        raise InvalidParameter(name, "应为 1-65535 的整数端口")
    return int(value)


def ssh_target(params: Mapping[str, Any], prefix: str = "", *, required: bool = True) -> SshTarget | None:
    """The SSH account named by `host`, `port`, `user`, `psssword`/`password` (or `<prefix>host`...)."""
    host_name, user_name = f"{prefix}host", f"{prefix}user"
    if not required and not params.get(host_name):
        return None
    user = text(params, user_name).strip()
    if not _USER.fullmatch(user):
        raise InvalidParameter(user_name, f"{user[:40]!r} 不是合法的用户名")
    password = text(params, f"{prefix}psssword", f"{prefix}password", required=False)
    private_key = text(params, f"{prefix}private_key", required=False)
    if not (password or private_key):
        raise MissingParameter(f"{prefix}psssword")
    return SshTarget(
        host=host(text(params, host_name), host_name),
        port=port(text(params, f"{prefix}port", required=False) or "22", f"{prefix}port"),
        username=user,
        password=password or None,
        private_key=private_key or None,
    )


def cluster_access(params: Mapping[str, Any]) -> ClusterAccess:
    """A `kubeconfig` parameter wins; otherwise the master's SSH account is required."""
    check_context(params)
    kubeconfig = text(params, "kubeconfig", required=False)
    if kubeconfig.strip():
        return ClusterAccess(kubeconfig=kubeconfig)
    if not params.get("host"):
        raise MissingParameter("host")
    return ClusterAccess(master=ssh_target(params))
