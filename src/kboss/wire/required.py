"""The document's required parameters, checked before any handler runs.

Driven by the contract (`contract.required_params`): the compat dispatcher (`registry.dispatch`) and the site
agent's routes (`site.api.site_state`) call `check(path, params)` after authentication and before anything is
read, written or sent. A parameter is missing when it is absent, null or blank; the answer names the parameter
as the document spells it (`MissingParameter`).

Two tables say where kboss knowingly departs from "required" (docs/compat-api.md, "Required parameters"):
`STAND_INS` lists parameters that another one may replace (the `/pcapi` cluster endpoints take a `kubeconfig` or
the master's SSH account), `DEFAULTED` those kboss fills in itself, with the reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

from kboss.errors import MissingParameter
from kboss.wire import contract

PCAPI = "/pcapi/api/v1/cluster/common"
CPCC = "/dev/cpcc"

# The /pcapi endpoints that reach a cluster (not a bare machine): a kubeconfig stands in for the master's account.
_CLUSTER_CALLS = ("node_label_opt", "get_cluster_pods", "get_cluster_nodes", "delete_cluster_node", "node_state_switch")
_MACHINE_CALLS = ("new_cluster", "new_worker")
_PASSWORD_STAND_INS = ("password", "private_key")  # docs/site-agent.md: `psssword` (sic) or `password`, or a key

STAND_INS: dict[str, dict[str, tuple[str, ...]]] = {
    **{
        f"{PCAPI}/{call}": {
            "host": ("kubeconfig",),
            "user": ("kubeconfig",),
            "psssword": (*_PASSWORD_STAND_INS, "kubeconfig"),
        }
        for call in _CLUSTER_CALLS
    },
    **{f"{PCAPI}/{call}": {"psssword": _PASSWORD_STAND_INS} for call in _MACHINE_CALLS},
    # The document's determine_accommodat takes a kubeconfig; kboss also takes the master's SSH account.
    f"{PCAPI}/determine_accommodat": {"kubeconfig": ("host",)},
    f"{PCAPI}/node_label_opt": {
        "host": ("kubeconfig",), "user": ("kubeconfig",), "psssword": (*_PASSWORD_STAND_INS, "kubeconfig"),
        "worker_node": ("node_name",),
    },
    f"{PCAPI}/delete_cluster_node": {
        "host": ("kubeconfig",), "user": ("kubeconfig",), "psssword": (*_PASSWORD_STAND_INS, "kubeconfig"),
        "node_name": ("worker_node",),
    },
    f"{CPCC}/cpcnode/add_cpcnode.dspy": {"adminpwd": ("ssh_key",)},
    # docs/compat-api.md: update_cpcwidget finds the component by `id`, or by `cpcid` + `type` + `model`.
    f"{CPCC}/cpcwidget/update_cpcwidget.dspy": {"cpcid": ("id",), "type": ("id",), "model": ("id",)},
    # A record's `id` names its center (and cluster); a `cpcid` sent as well must match it.
    f"{CPCC}/cpccluster/update_cpccluster.dspy": {"cpcid": ("id",)},
    f"{CPCC}/cpcwidget/delete_cpcwidget.dspy": {"cpcid": ("id",)},
    f"{CPCC}/cpcpodyaml/update_cpcpodyaml.dspy": {"cpcid": ("id",), "clusterid": ("id",)},
}  # fmt: skip

_SSH_PORT = "22, SSH 的默认端口"
_UPDATE = "更新只改所发送的字段,其余保留已存的值"
_STANDARD = "不填即 STANDARD (不区分型号),与报价的 resources 一致"
_INSTANCE_DEFAULT = "实例按 instance_type 的默认值 (kboss.kube.instance_spec)"

DEFAULTED: dict[str, dict[str, str]] = {
    **{f"{PCAPI}/{call}": {"port": _SSH_PORT} for call in (*_CLUSTER_CALLS, *_MACHINE_CALLS)},
    f"{CPCC}/cpclist/update_cpclist.dspy": dict.fromkeys(
        ("name", "pcapi_url", "api_user", "api_pwd", "contactname", "contactphone"), _UPDATE
    ),
    f"{CPCC}/cpcnode/add_cpcnode.dspy": {
        "sshport": _SSH_PORT,
        "external_ip": "没有公网地址时不填 (文档的列表显示为 未设置)",
        "node_status": "新设备为空闲 (0);之后由集群操作改变",
        "role": "不填即 worker;建集群时由操作设定",
        **dict.fromkeys(("cpu_model", "memory_model", "gpu_model"), _STANDARD),
        **dict.fromkeys(
            ("cpu_stock", "memory_stock", "sysdisk_stock", "datadisk_stock", "gpu_stock"),
            "不填即 0 (可由 POST /api/v1/devices/{id}/probe 的建议填写)",
        ),
    },
    f"{CPCC}/cpcnode/update_cpcnode.dspy": {
        name: _UPDATE for name in contract.required_params(f"{CPCC}/cpcnode/update_cpcnode.dspy") if name != "id"
    },
    f"{CPCC}/cpcpodyaml/update_cpcpodyaml.dspy": {
        name: _UPDATE
        for name in contract.required_params(f"{CPCC}/cpcpodyaml/update_cpcpodyaml.dspy")
        if name not in ("cpcid", "clusterid")
    },
    f"{CPCC}/cpcpodyaml/new_cpcpodyaml.dspy": {
        **dict.fromkeys(
            (
                "pod_imagepath",
                "source_insideport",
                "source_apiport",
                "source_mountpath",
                "source_portmode",
                "source_restartpolicy",
                "source_authuser",
                "source_replicasetnum",
            ),
            _INSTANCE_DEFAULT,
        ),
        "source_outsideport": "不填时由 Kubernetes 分配 NodePort",
        "source_selflabel": "不填即没有自定义标签",
        "source_nodeselector": "不填即不限节点",
        "source_gpu": "不填即不用 GPU (0)",
        "gpu_model": "只在 source_gpu > 0 时需要",
        "source_storagelimits": "不填即没有持久存储 (0)",
        "disk_sys_limit": "不填即不限临时存储 (0)",
    },
    f"{CPCC}/cpcbuy/determine_accommodat.dspy": {"kyylabels": "不填即没有额外的实例标签"},
    f"{CPCC}/cpcwidget/add_cpcwidget.dspy": {
        "model": _STANDARD,
        "add_opt": "不填即 no: 已有同类型同型号的部件时拒绝",
        "resource_unit": "不填即该类型的基本单位 (cpu 核, memory Mi, disk Gi, gpu 卡),答复中显示",
        "stock": "不填即 0;库存可之后用 add_opt=yes 追加",
        "charge_unit": "不填即 小时,答复中显示",
        "account_unit": "不填即 元,答复中显示",
    },
}


# The document's own answer for these (its examples); the others name the parameter (`MissingParameter`).
DOCUMENT_MESSAGES: dict[tuple[str, str], str] = {
    (f"{CPCC}/cpclist/update_cpclist.dspy", "id"): "无算力中心ID",
    (f"{CPCC}/cpcnode/get_cpcnode.dspy", "cpcid"): "无算力中心ID",
}


def _present(params: Mapping[str, Any], name: str) -> bool:
    value = params.get(name)
    return value is not None and not (isinstance(value, str) and not value.strip())


@cache
def _checks(path: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    try:
        names = contract.required_params(path)
    except KeyError:
        return ()  # not one of the document's endpoints (native routes, kboss's additions)
    defaulted, stand_ins = DEFAULTED.get(path, {}), STAND_INS.get(path, {})
    return tuple((name, stand_ins.get(name, ())) for name in names if name not in defaulted)


def missing(path: str, params: Mapping[str, Any]) -> str | None:
    """The first of the document's required parameters of `path` that `params` lacks, if any."""
    for name, stand_ins in _checks(path):
        if not any(_present(params, key) for key in (name, *stand_ins)):
            return name
    return None


def check(path: str, params: Mapping[str, Any]) -> None:
    name = missing(path, params)
    if name is not None:
        error = MissingParameter(name)
        error.message = DOCUMENT_MESSAGES.get((path, name), error.message)
        raise error
