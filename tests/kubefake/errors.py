"""`Status` failures as kube-apiserver writes them (reason, code, message wording, details)."""

from __future__ import annotations

from typing import Any

from tests.kubefake.resources import ResourceType


class ApiStatusError(Exception):
    """Raised anywhere in the fake; the app turns it into a `Status` body with the same HTTP code."""

    def __init__(self, code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details

    def body(self) -> dict[str, Any]:
        return status_body(self.code, self.reason, self.message, self.details)


def status_body(
    code: int, reason: str, message: str, details: dict[str, Any] | None = None, *, success: bool = False
) -> dict[str, Any]:
    body: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {}}
    body["status"] = "Success" if success else "Failure"
    if message:
        body["message"] = message
    if reason:
        body["reason"] = reason
    if details:
        body["details"] = details
    body["code"] = code
    return body


def _details(rt: ResourceType, name: str) -> dict[str, Any]:
    details = {"name": name, "kind": rt.plural}
    if rt.group:
        details["group"] = rt.group
    return details


def not_found(rt: ResourceType, name: str) -> ApiStatusError:
    return ApiStatusError(404, "NotFound", f'{rt.qualified} "{name}" not found', _details(rt, name))


def namespace_not_found(namespace: str) -> ApiStatusError:
    return ApiStatusError(
        404, "NotFound", f'namespaces "{namespace}" not found', {"name": namespace, "kind": "namespaces"}
    )


def already_exists(rt: ResourceType, name: str) -> ApiStatusError:
    return ApiStatusError(409, "AlreadyExists", f'{rt.qualified} "{name}" already exists', _details(rt, name))


def conflict(rt: ResourceType, name: str, why: str) -> ApiStatusError:
    message = f'Operation cannot be fulfilled on {rt.qualified} "{name}": {why}'
    return ApiStatusError(409, "Conflict", message, _details(rt, name))


def invalid(rt: ResourceType, name: str, causes: list[tuple[str, str]]) -> ApiStatusError:
    """422 with one cause per (field, text), worded like field.ErrorList.ToAggregate()."""
    texts = [f"{field}: {text}" if field else text for field, text in causes]
    joined = texts[0] if len(texts) == 1 else "[" + ", ".join(texts) + "]"
    details = _details(rt, name) | {"kind": rt.kind}
    details["causes"] = [{"reason": "FieldValueInvalid", "message": text, "field": field} for field, text in causes]
    return ApiStatusError(422, "Invalid", f'{rt.qualified_kind} "{name}" is invalid: {joined}', details)


def bad_request(message: str) -> ApiStatusError:
    return ApiStatusError(400, "BadRequest", message)
