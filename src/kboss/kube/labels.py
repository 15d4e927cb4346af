"""Validators for Kubernetes labels, selectors and object names, wherever users type them; kboss's naming rules.

Node labels are written `key=value`, instance labels `key:value` (the spec's two label types), selectors as
comma-separated `key=value` pairs. The syntax is Kubernetes' own, so anything that passes here is accepted by
the API server, and nothing that could mean something to a shell (spaces, quotes, `;`, `$(`) ever passes:

- key   = [prefix "/"] name; prefix a DNS-1123 subdomain (≤ 253),
          name ≤ 63 characters of `[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?`
- value = "" or ≤ 63 characters of the same form as a name.
"""

from __future__ import annotations

import re

from kboss.errors import Conflict, InvalidParameter

_NAME = re.compile(r"[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?")
_DNS_LABEL = re.compile(r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*")
_KEY_CHARS = re.compile(r"[-A-Za-z0-9_./]")
_VALUE_CHARS = re.compile(r"[-A-Za-z0-9_.]")
_NAME_RULE = "最多 63 个字母、数字或 -_.,且以字母或数字开头和结尾"
_SHOWN = 80  # characters of an offending input quoted back in a message


def is_dns1123_label(text: str) -> bool:
    """A DNS-1123 label (namespace, Service-like names): lower-case alphanumerics and `-`, ≤ 63."""
    return len(text) <= 63 and _DNS_LABEL.fullmatch(text) is not None


def is_dns1123_subdomain(text: str) -> bool:
    """A DNS-1123 subdomain (most object names, label key prefixes, hosts): dot-separated labels, ≤ 253."""
    return len(text) <= 253 and _DNS_SUBDOMAIN.fullmatch(text) is not None


def is_dns1035_label(text: str) -> bool:
    """A DNS-1035 label (Service names): a DNS-1123 label that starts with a letter."""
    return is_dns1123_label(text) and text[0].isalpha()


def rfc1123_name(text: str, max_length: int = 63) -> str:
    """`text` made a DNS-1123 label: lower-cased, other characters → `-`, no `-` at the ends, cut to length.

    `4hBm8atruISOU2bs24t_N` → `4hbm8atruisou2bs24t-n` (the spec's namespace example). May return "".
    """
    name = re.sub(r"[^a-z0-9-]", "-", text.lower()).strip("-")
    return name[:max_length].rstrip("-")


# kboss's names for an instance's objects (the spec's example: namespace_name, podcd_name, service_name).
_INSTANCE_NAME_MAX = 40  # room for "-statefulset" within the 52 characters StatefulSets and CronJobs allow


def namespace_name(clusterid: str, orgid: str) -> str:
    """The org's namespace in a cluster: `<clusterid>-<orgid>` made RFC 1123, as in the spec's example."""
    return rfc1123_name(f"{clusterid}-{orgid}")


def serviceaccount_name(namespace: str) -> str:
    return f"{namespace}-serviceaccount"


def instance_name(instance_id: str) -> str:
    """The instance id as a name and label value: `evfldtxjkr3jd8zxnfhd5`."""
    return rfc1123_name(instance_id, _INSTANCE_NAME_MAX)


def controller_name(instance_id: str, engine: str) -> str:
    """`<id>-<engine lower>`: `evfldtxjkr3jd8zxnfhd5-statefulset`."""
    return f"{instance_name(instance_id)}-{engine.lower()}"


def service_name(instance_id: str) -> str:
    """`<id>-service`; Service names must start with a letter (DNS-1035), so `svc-` precedes a digit."""
    name = f"{instance_name(instance_id)}-service"
    return name if name[0].isalpha() else f"svc-{name}"


def _shown(text: str) -> str:
    return repr(text if len(text) <= _SHOWN else text[:_SHOWN] + "…")


def _bad_chars(text: str, allowed: re.Pattern[str]) -> str:
    """Why `text` fails, naming the first character it may not contain (space, quote, `;`, `$`...)."""
    for char in text:
        if not allowed.fullmatch(char):
            return f"{_shown(text)} 含有不允许的字符 {char!r}"
    return ""


def validate_label_key(key: str, param: str) -> str:
    """`key` unchanged when it is a valid label key, else InvalidParameter naming `param` and the key."""
    prefix, slash, name = key.rpartition("/")
    if len(name) <= 63 and _NAME.fullmatch(name) and (not slash or is_dns1123_subdomain(prefix)):
        return key
    if not key:
        raise InvalidParameter(param, "标签键不能为空")
    problem = _bad_chars(key, _KEY_CHARS)
    if not problem and slash and not is_dns1123_subdomain(prefix):
        problem = f"标签键前缀 {_shown(prefix)} 不是合法的 DNS 子域名 (小写字母、数字、-和.,最长 253)"
    raise InvalidParameter(param, problem or f"标签键 {_shown(key)} 的名称部分应为{_NAME_RULE}")


def validate_label_value(value: str, param: str) -> str:
    """`value` unchanged when it is a valid label value (possibly empty), else InvalidParameter."""
    if not value or (len(value) <= 63 and _NAME.fullmatch(value)):
        return value
    problem = _bad_chars(value, _VALUE_CHARS)
    raise InvalidParameter(param, problem or f"标签值 {_shown(value)} 应为空或{_NAME_RULE}")


def _split(text: str, separators: str, param: str, form: str) -> tuple[str, str]:
    if not isinstance(text, str) or not text:
        raise InvalidParameter(param, f"应为 {form} 形式的标签")
    positions = [text.find(sep) for sep in separators if sep in text]
    if not positions:
        raise InvalidParameter(param, f"{_shown(text)} 应为 {form} 形式的标签")
    at = min(positions)
    key, value = text[:at], text[at + 1 :]
    return validate_label_key(key, param), validate_label_value(value, param)


def parse_node_label(text: str, param: str) -> tuple[str, str]:
    """A node label written `key=value` (the spec's label type 1) as (key, value)."""
    return _split(text, "=", param, "key=value")


def parse_instance_label(text: str, param: str) -> tuple[str, str]:
    """An instance label written `key:value` (label type 0, e.g. `app:ubuntu3`); `key=value` is accepted too.

    Neither `:` nor `=` may appear in a key or a value, so splitting at the first of them is unambiguous.
    """
    return _split(text, ":=", param, "key:value")


def parse_selector(text: str, param: str) -> dict[str, str]:
    """Comma-separated `key=value` pairs (`kyy-gpu=false,zone=a`) as a dict; empty text selects everything.

    Blanks around pairs and empty items (a trailing comma) are tolerated; the same key twice with different
    values is refused, since no node could match both.
    """
    if not isinstance(text, str):
        raise InvalidParameter(param, "应为以逗号分隔的 key=value 列表")
    selector: dict[str, str] = {}
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        key, value = parse_node_label(item, param)
        if selector.get(key, value) != value:
            raise InvalidParameter(param, f"标签键 {_shown(key)} 出现了两个不同的值")
        selector[key] = value
    return selector


def format_selector(selector: dict[str, str]) -> str:
    """The inverse of `parse_selector`: `{"a": "1", "b": "2"}` → `a=1,b=2`."""
    return ",".join(f"{key}={value}" for key, value in selector.items())


def check_unlabel(node: str, key: str, value: str | None, current: dict[str, str]) -> None:
    """Unbinding `key=value` removes the label only when the node has that very value; else Conflict, naming it.

    `value` None (written `key` or `key-`) removes whatever value the key has; an absent key is fine (kubectl).
    """
    if value is None or key not in current or current[key] == value:
        return
    raise Conflict(f'节点 "{node}" 的标签 {key} 当前值为 "{current[key]}", 不是 "{value}": 未解绑')
