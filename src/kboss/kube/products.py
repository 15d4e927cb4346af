"""Products to place, as the platform sends them (DESIGN §7): each a set of requests in the scheduler's units, a
node selector and the GPU models it asks for; and how a GPU model is named on a node.

`kboss.kube.capacity` answers where they fit.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

from kboss.errors import InvalidParameter
from kboss.kube.labels import parse_selector
from kboss.kube.quantity import value_ceil
from kboss.kube.requests import CPU

MEMORY, EPHEMERAL_STORAGE, GPU_RESOURCE = "memory", "ephemeral-storage", "nvidia.com/gpu"
# Node labels naming the GPU model, by precedence: the first one a node carries is its model. The operator's
# own label wins over GPU feature discovery's product name, so a wrong or unhelpful GFD value can be overridden.
GPU_MODEL_LABEL_KEYS: tuple[str, ...] = ("kboss.io/gpu-model", "nvidia.com/gpu.product")
# Product resource type → (Kubernetes resource, scheduler units per product unit). Products state cpu in
# cores, memory in Mi and disk in Gi (the spec's units); the scheduler counts millicores and bytes.
PRODUCT_RESOURCES: dict[str, tuple[str, int]] = {
    "cpu": (CPU, 1000),
    "memory": (MEMORY, 2**20),
    "disk": (EPHEMERAL_STORAGE, 2**30),
    "gpu": (GPU_RESOURCE, 1),
}
_MAX_AMOUNT = 2**40  # far above any machine, low enough that no amount overflows anything downstream


@lru_cache(maxsize=1024)
def normalize_gpu_model(model: str) -> str:
    """Models compare case-insensitively with `-`, `_` and blanks equivalent: `RTX 5090` = `rtx_5090`."""
    return re.sub(r"[-_\s]+", "-", model.strip()).casefold()


def gpu_model_affinity(model: str) -> dict[str, Any]:
    """A pod affinity for nodes whose GPU model label names `model`, keys taken by the same precedence.

    Affinity compares label values exactly, so the usual spellings are listed: as given, upper and lower
    case, words joined by `-` or `_` (`normalize_gpu_model` above is fully case-insensitive).
    """
    base = re.sub(r"[\s_-]+", "-", model.strip())
    values = sorted({v for b in (base, base.replace("-", "_")) for v in (b, b.upper(), b.lower())})
    terms = []
    for position, key in enumerate(GPU_MODEL_LABEL_KEYS):
        absent = [{"key": earlier, "operator": "DoesNotExist"} for earlier in GPU_MODEL_LABEL_KEYS[:position]]
        terms.append({"matchExpressions": [*absent, {"key": key, "operator": "In", "values": values}]})
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms}}}


@dataclass(frozen=True, slots=True)
class Product:
    """A product to place: requests in scheduler units by Kubernetes resource, a node selector, GPU models."""

    id: str
    requests: Mapping[str, int]
    selector: Mapping[str, str] = field(default_factory=dict)
    gpu_models: frozenset[str] = frozenset()  # normalized; more than one can never be satisfied


def parse_products(data: Any, param: str = "resources") -> list[Product]:
    """Products as the platform sends them: JSON text, a list of objects, or one object (DESIGN §7).

    Errors name the product and field, e.g. `resources[2].resources[0].amount`. Unknown fields are ignored.
    """
    if isinstance(data, str | bytes):
        try:
            data = json.loads(data)
        except json.JSONDecodeError as exc:
            raise InvalidParameter(param, f"不是合法的 JSON (第 {exc.lineno} 行第 {exc.colno} 列)") from None
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        raise InvalidParameter(param, "应为产品对象的数组")
    return [_product(item, f"{param}[{index}]") for index, item in enumerate(data)]


def _product(item: Any, where: str) -> Product:
    if not isinstance(item, dict):
        raise InvalidParameter(where, "应为对象")
    product_id = item.get("id")
    if isinstance(product_id, bool) or not isinstance(product_id, (str, int)) or not str(product_id).strip():
        raise InvalidParameter(f"{where}.id", "缺少产品 id")
    resources = item.get("resources") or []
    if not isinstance(resources, list):
        raise InvalidParameter(f"{where}.resources", "应为数组")
    requests: dict[str, int] = {}
    models: set[str] = set()
    for index, entry in enumerate(resources):
        resource, amount, model = _product_resource(entry, f"{where}.resources[{index}]")
        requests[resource] = requests.get(resource, 0) + amount
        if model:
            models.add(normalize_gpu_model(model))
    selector = _product_selector(item.get("labels"), f"{where}.labels")
    return Product(str(product_id).strip(), requests, selector, frozenset(models))


def _product_resource(entry: Any, where: str) -> tuple[str, int, str]:
    if not isinstance(entry, dict):
        raise InvalidParameter(where, "应为对象")
    kind = entry.get("type")
    if kind not in PRODUCT_RESOURCES:
        kind = str(kind or "").strip().lower()
        if kind not in PRODUCT_RESOURCES:
            raise InvalidParameter(f"{where}.type", f"应为 {'/'.join(PRODUCT_RESOURCES)}")
    resource, unit = PRODUCT_RESOURCES[kind]
    amount = _scaled_amount(entry.get("amount"), unit, resource == GPU_RESOURCE, f"{where}.amount")
    model = entry.get("model") if kind == "gpu" else None
    return resource, amount, str(model).strip() if model else ""


def _scaled_amount(value: Any, unit: int, whole: bool, where: str) -> int:
    """`value` product units in scheduler units, rounded up. Integers (the spec's case) skip Decimal."""
    if type(value) is int and 0 < value <= _MAX_AMOUNT:
        return value * unit
    if isinstance(value, bool) or not isinstance(value, (int, float, str, Decimal)):
        raise InvalidParameter(where, "应为正数")
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        number = Decimal("NaN")
    if not number.is_finite() or number <= 0 or number > _MAX_AMOUNT:
        raise InvalidParameter(where, f"应为正数,收到 {str(value)[:40]!r}")
    if whole and number != number.to_integral_value():
        raise InvalidParameter(where, "GPU 数量应为整数 (卡)")
    return value_ceil(number * unit)


def _product_selector(labels: Any, where: str) -> dict[str, str]:
    """`labels` as a node selector: a list of `key=value` strings, or one comma-separated string."""
    if isinstance(labels, list) and all(isinstance(label, str) for label in labels):
        labels = ",".join(labels)
    if labels is not None and not isinstance(labels, str):
        raise InvalidParameter(where, "应为 key=value 标签的数组")
    return parse_selector(labels or "", where)
