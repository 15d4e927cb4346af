"""What a customer's token may call at all: the buying side of both APIs. Every other endpoint — machines,
clusters and their secrets, boards, labels, components' management, operations, customers, revenue — does not
exist for a customer (`没有这个接口`, 404), whatever its parameters, before any service runs. The services scope
what the allowed endpoints answer (`kboss.common.published`, the instances' ownership); this table keeps a new
provider endpoint from being reachable by customers by default. `tests/customers/test_isolation_matrix.py` calls
every endpoint of both APIs as a customer.
"""

from __future__ import annotations

from starlette.requests import Request

from kboss.common.context import Principal
from kboss.errors import NotFound
from kboss.wire.errors import COMPAT_PREFIXES

_CPCC = "/dev/cpcc"
CUSTOMER_COMPAT = frozenset(
    {
        f"{_CPCC}/cpclist/get_cpclist.dspy",
        f"{_CPCC}/cpccluster/get_cpccluster.dspy",  # the published centers' clusters, to choose one to buy on
        f"{_CPCC}/cpcwidget/get_cpcwidget.dspy",
        f"{_CPCC}/cpcwidget/accrual_price.dspy",
        f"{_CPCC}/cpcwidget/obtaining_gpuinfo.dspy",
        f"{_CPCC}/cpcbuy/determine_accommodat.dspy",
        f"{_CPCC}/cpcpodyaml/new_cpcpodyaml.dspy",
        f"{_CPCC}/cpcpodyaml/get_cpcpodyaml.dspy",
        f"{_CPCC}/cpcpodyaml/update_cpcpodyaml.dspy",
        f"{_CPCC}/cpcpodyaml/delete_cpcpodyaml.dspy",
    }
)
CUSTOMER_NATIVE = frozenset(
    {
        # Each caller's own login (these routes authenticate by themselves; listed for the table to be whole).
        ("POST", "/api/v1/auth/login"),
        ("POST", "/api/v1/auth/logout"),
        ("POST", "/api/v1/auth/password"),
        ("GET", "/api/v1/auth/me"),
        ("GET", "/api/v1/centers"),
        ("GET", "/api/v1/centers/{center_id}"),
        ("GET", "/api/v1/centers/{center_id}/components"),
        ("GET", "/api/v1/centers/{center_id}/clusters"),
        ("POST", "/api/v1/quotes"),
        ("GET", "/api/v1/gpu-inventory"),
        ("POST", "/api/v1/clusters/{cluster_id}/capacity"),
        ("GET", "/api/v1/clusters/{cluster_id}/instances"),
        ("POST", "/api/v1/clusters/{cluster_id}/instances"),
        ("GET", "/api/v1/instances/{instance_id}"),
        ("PATCH", "/api/v1/instances/{instance_id}"),
        ("DELETE", "/api/v1/instances/{instance_id}"),
        ("POST", "/api/v1/instances/{instance_id}/scale"),
        ("GET", "/api/v1/instances/{instance_id}/order"),
        ("POST", "/api/v1/instances/{instance_id}/renew"),
        ("GET", "/api/v1/accounts/{orgid}"),
        ("GET", "/api/v1/accounts/{orgid}/ledger"),
        ("GET", "/api/v1/customers/{customer_id}/quota"),
        ("GET", "/api/v1/statements"),
        ("GET", "/api/v1/audit"),  # its own org's trail
        ("POST", "/api/v1/users/{user_id}/signout"),  # a customer's admins manage the org's own users
        ("DELETE", "/api/v1/users/{user_id}"),
    }
)


def allowed_for_customers(method: str, path: str, route_template: str) -> bool:
    if path.startswith(COMPAT_PREFIXES):
        return path in CUSTOMER_COMPAT
    return (method, route_template) in CUSTOMER_NATIVE


def check(request: Request, principal: Principal) -> None:
    """Refuse a customer's call to an endpoint that is not for customers, as if it did not exist."""
    if not principal.is_customer:
        return
    route = request.scope.get("route")
    if not allowed_for_customers(request.method, request.url.path, str(getattr(route, "path", ""))):
        raise NotFound(f"没有这个接口: {request.url.path}")
