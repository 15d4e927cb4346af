"""Keeping secrets out of text: the mask, what secrets look like, and redactors of the secret values known.

Everything a person may read — logs, step output, operation history, error messages — passes through here. Three
layers, each catching what the others cannot: known values (a `Redactor` holds the passwords, keys and
kubeconfigs a piece of work has read), shapes (kubeadm bootstrap tokens, certificate keys, `password: …` and
`key=value` fields whose name says secret, percent-encoded names included), and a bounded registry of values a
process has seen travel (join tokens in an access log's query string). Parameters (query strings, forms, JSON
bodies) are redacted the other way round, by allow-list: a value is shown only when its name is known harmless
(`HARMLESS_NAMES`), since a deny-list misses every secret name nobody thought of. This module imports nothing from
kboss: every layer, adapters included, may use it.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any
from urllib.parse import unquote_plus

MASK = "******"
# Names of fields whose value is a secret, wherever they travel (queries, forms, JSON, YAML, messages).
_SECRET_NAME = re.compile(
    r"(?i)(passw|psssw|pwd|secret|token|kubeconfig|ssh_key|private|clusterjoin|credential|authorization"
    r"|client-key-data|client-certificate-data)"
)
JOIN_TOKEN = re.compile(r"\b[a-z0-9]{6}\.[a-z0-9]{16}\b")  # a kubeadm bootstrap token
_CERTIFICATE_KEY = re.compile(r"(?<!sha256:)\b[0-9a-f]{64}\b")  # kubeadm's --certificate-key; the CA hash stays
# A name starts where no name character precedes it: without the look-behind, a long run of name characters with
# no `=` after it would be tried from every position (quadratic in the line's length).
# Quotes around the name: JSON's `"name"` and Python's `'name'` (a dict's repr in a log line).
_FIELD = re.compile(r"([\"']?)(?<![\w%.-])([\w%.-]+)([\"']?\s*[:=]\s*)(\"[^\"]*\"|'[^']*'|[^\s,&}\"']+)")
_SHORTEST_SEEN = 4  # a value merely seen in passing, shorter, would mask harmless text in every log line


# Parameter names whose values are safe to log: ids, names, paging, dates, states, roles, types, sizes, prices.
# Anything else — a secret, a name nobody listed, a misspelling — is logged as the mask.
_HARMLESS = """
    id ids cpcid clusterid controllerid ctl_nodeid nodeid deviceid device_id instanceid instance_id orgid userid
    labelid widgetid worker_nodeid operationid operation_id center_id cluster_id component_id record_id
    name cluster_name node_name namespace_name podcd_name service_name serviceaccount_name source_name
    label label_key label_value kyylabels contactname username user api_user adminuser source_authuser
    page rows sort order limit offset cursor since follow stream reveal force darin lang q search
    enable_date export_date expire_date start_date end_date date from to
    state status node_status role type labeltype devicetype clustertype cluster_type instance_type kind action
    opt add_opt model cpu_model gpu_model memory_model resource_unit charge_unit account_unit duration duration_unit
    unit_price stock cpu_stock gpu_stock memory_stock sysdisk_stock datadisk_stock disk_sys_limit amount
    host ip external_ip port sshport source_apiport source_insideport source_outsideport source_portmode
    source_cpurate source_memrate source_gpu source_replicasetnum source_restartpolicy source_podengine
    source_storagelimits source_mountpath source_nodeselector source_selflabel worker_node step
"""
HARMLESS_NAMES = frozenset(_HARMLESS.split())
_MOST_DECODINGS = 5  # `%2525…` settles within a few rounds; a name that never does is not trusted anyway
_PLAIN_NAME = re.compile(r"[\w.\-\[\]]{1,64}")  # what a parameter's name looks like; anything else may be a value
# A query string inside a log line (`GET /x?a=1&b=2`): from a `?` glued to a path to the next space or `?`, so
# that each character is scanned once whatever the line holds.
_QUERY = re.compile(r"(?<=[^\s?])\?([^\s\"'?#<>]+)")


def canonical_name(name: str) -> str:
    """A parameter's name as a server reads it: percent-decoded (`+` as space) until stable, case-folded."""
    for _ in range(_MOST_DECODINGS):
        decoded = unquote_plus(name)
        if decoded == name:
            break
        name = decoded
    return name.strip().casefold()


def is_secret_name(name: str) -> bool:
    """Whether a field of this name carries a secret; the name is percent-decoded first (`pssswor%64`)."""
    return bool(_SECRET_NAME.search(canonical_name(name)))


def is_harmless_name(name: str) -> bool:
    """Whether a parameter of this name may be logged with its value (the allow-list, after decoding)."""
    return canonical_name(name) in HARMLESS_NAMES


def _query_pair(pair: str) -> str:
    name, equals, _ = pair.partition("=")
    if not equals:  # a bare `?abc`: the name is all there is, and it may be the secret itself
        return pair if is_harmless_name(name) else MASK
    if is_harmless_name(name):
        return pair
    shown = name if _PLAIN_NAME.fullmatch(canonical_name(name)) else MASK
    return f"{shown}={MASK}"


def redact_query(query: str) -> str:
    """A query string or form body with every value whose name is not known harmless masked."""
    return "&".join(_query_pair(pair) if pair else pair for pair in query.split("&"))


def redact_url(target: str) -> str:
    """A request target (`/path?query`) as an access log may show it: the path, the query by allow-list."""
    path, question, query = target.partition("?")
    return f"{path}?{redact_query(query)}" if question else target


def redact_fields(value: Any, *, shown: bool = False) -> Any:
    """A decoded JSON body or form (dicts, lists, scalars) with the values of unlisted names masked."""
    if isinstance(value, dict):
        return {key: redact_fields(item, shown=is_harmless_name(str(key))) for key, item in value.items()}
    if isinstance(value, list):
        return [redact_fields(item, shown=shown) for item in value]
    return value if shown or value is None else MASK


def _mask_field(match: re.Match[str]) -> str:
    if not is_secret_name(match.group(2)):
        return match.group(0)
    return f"{match.group(1)}{match.group(2)}{match.group(3)}{MASK}"


def redact_shapes(text: str) -> str:
    """Mask what looks secret whoever wrote it: secret-named fields, bootstrap tokens, certificate keys."""
    text = _FIELD.sub(_mask_field, text)
    text = JOIN_TOKEN.sub(MASK, text)
    return _CERTIFICATE_KEY.sub(MASK, text)


def _pieces(secret: str) -> list[str]:
    """A secret and, for multi-line secrets (PEM keys, kubeconfigs), each long line of it: output is redacted
    line by line when streamed. PEM armour (`-----`) and short lines carry nothing secret. A short secret is
    still masked: a three-letter password is a password."""
    stripped = secret.strip()
    if not stripped:
        return []
    lines = [line.strip() for line in stripped.splitlines()]
    extra = [line for line in lines if len(line) >= 8 and not line.startswith("-----")]
    return [stripped, *extra] if len(lines) > 1 else [stripped]


class Redactor:
    """Replaces every known secret value with the mask, and (`shapes=True`) what looks secret as well.

    `add` registers one more value (a step that has just read a password); `with_secrets` makes an extended copy
    (one SSH command's extra secrets, without touching the client's own redactor).
    """

    def __init__(self, secrets: Iterable[str | None] = (), *, shapes: bool = False) -> None:
        self._shapes = shapes
        self._secrets: list[str] = []
        for secret in secrets:
            self.add(secret)

    def add(self, secret: str | None) -> None:
        if not secret:
            return
        known = set(self._secrets)
        self._secrets.extend(piece for piece in _pieces(secret) if piece not in known)
        self._secrets.sort(key=len, reverse=True)  # a secret containing another is masked whole

    def with_secrets(self, secrets: Iterable[str | None]) -> Redactor:
        extra = [secret for secret in secrets if secret]
        if not extra:
            return self
        return Redactor([*self._secrets, *extra], shapes=self._shapes)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return redact_shapes(text) if self._shapes else text

    def __repr__(self) -> str:
        return f"Redactor({len(self._secrets)} secrets)"


class KnownSecrets:
    """Values a process has seen travel and must never log, whatever field carries them; bounded (the oldest
    go first), so that a long-running agent does not grow with every join token it ever handled."""

    def __init__(self, limit: int = 1024) -> None:
        self._limit = limit
        self._values: OrderedDict[str, None] = OrderedDict()

    def register(self, value: str) -> None:
        if len(value) < _SHORTEST_SEEN:
            return
        self._values[value] = None
        self._values.move_to_end(value)
        while len(self._values) > self._limit:
            self._values.popitem(last=False)

    def __len__(self) -> int:
        return len(self._values)

    def __call__(self, text: str) -> str:
        for value in sorted(self._values, key=len, reverse=True):
            if value in text:
                text = text.replace(value, MASK)
        return text


KNOWN = KnownSecrets()


def redact_targets(text: str) -> str:
    """Every request target in a text (`GET /x?a=1&b=2`) with its query string redacted by allow-list."""
    return _QUERY.sub(lambda match: f"?{redact_query(match.group(1))}", text)


def redact(text: str) -> str:
    """Text for a log line or a stored message: what looks secret, every value registered in `KNOWN`, and the
    query strings of request targets by allow-list."""
    return redact_shapes(redact_targets(KNOWN(text)))
