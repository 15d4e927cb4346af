"""Join commands: parsed and validated here, handed to the machine as separate values, never as shell text.

The platform stores what `kubeadm token create --print-join-command` printed on the control plane:

    kubeadm join 10.0.0.5:6443 --token abcdef.0123456789abcdef \\
        --discovery-token-ca-cert-hash sha256:<64 hex digits>

Run as a string, that record would be shell code on a machine we hold root on, written by whoever can
change the record. So only the flags kubeadm prints (plus `--control-plane`, `--certificate-key` and
`--cri-socket`) are accepted, every value is checked, and the argv is rebuilt from the parts.
Error messages name the parameter and the offending flag, never a token.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from kboss.agent import targets
from kboss.errors import InvalidParameter
from kboss.redaction import JOIN_TOKEN

CA_CERT_HASH = re.compile(r"sha256:[0-9a-f]{64}")
CERTIFICATE_KEY = re.compile(r"[0-9a-f]{64}")
CRI_SOCKET = re.compile(r"(unix://)?/[A-Za-z0-9._/-]{1,200}")
# Everything kubeadm prints; quotes, `;`, `$`, backticks, pipes and the like are refused outright.
_ALLOWED = re.compile(r"[A-Za-z0-9.:/\[\]_=\-\s\\]*")
_VALUE_FLAGS = ("--token", "--discovery-token-ca-cert-hash", "--certificate-key", "--cri-socket")
_MAX_LENGTH = 2000


@dataclass(frozen=True)
class JoinCommand:
    endpoint: str  # host:port of the API server, as kubeadm printed it
    token: str = field(repr=False)
    ca_cert_hash: str
    control_plane: bool = False
    certificate_key: str = field(default="", repr=False)
    cri_socket: str = ""

    def argv(self) -> list[str]:
        argv = ["kubeadm", "join", self.endpoint, "--token", self.token]
        argv += ["--discovery-token-ca-cert-hash", self.ca_cert_hash]
        if self.control_plane:
            argv.append("--control-plane")
        if self.certificate_key:
            argv += ["--certificate-key", self.certificate_key]
        if self.cri_socket:
            argv += ["--cri-socket", self.cri_socket]
        return argv

    def secrets(self) -> list[str]:
        """What must be masked wherever this command travels: the token and the certificate key."""
        return [s for s in (self.token, self.certificate_key) if s]

    def __str__(self) -> str:
        return " ".join(self.argv())


_FLAG_NAME = re.compile(r"--?[a-z][a-z-]{0,39}")


def _words(text: str, name: str) -> list[str]:
    if len(text) > _MAX_LENGTH:
        raise InvalidParameter(name, "过长")
    if not _ALLOWED.fullmatch(text):
        raise InvalidParameter(name, "含有不允许的字符 (只接受 kubeadm join 命令本身)")
    # kubeadm prints `\` line continuations; they are layout, not arguments.
    return [word for word in text.split() if word != "\\"]


def _flags(words: list[str], name: str) -> tuple[list[str], dict[str, str], bool]:
    """Positional words, flag values and whether --control-plane was given."""
    positional: list[str] = []
    values: dict[str, str] = {}
    control_plane = False
    queue = list(words)
    while queue:
        word = queue.pop(0)
        if not word.startswith("-"):
            positional.append(word)
            continue
        flag, equals, value = word.partition("=")
        if flag == "--control-plane" and not equals:
            control_plane = True
            continue
        if flag not in _VALUE_FLAGS:
            # Quoted only when it looks like a flag: the command carries a token, which is never echoed.
            shown = f" {flag}" if _FLAG_NAME.fullmatch(flag) else ""
            raise InvalidParameter(name, f"不支持的参数{shown}")
        if not equals:
            if not queue or queue[0].startswith("-"):
                raise InvalidParameter(name, f"{flag} 缺少取值")
            value = queue.pop(0)
        if flag in values:
            raise InvalidParameter(name, f"{flag} 重复出现")
        values[flag] = value
    return positional, values, control_plane


def _endpoint(value: str, name: str) -> str:
    host, sep, port = value.rpartition(":")
    if not sep or not host:
        raise InvalidParameter(name, "API 地址应为 host:port")
    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        targets.host(bare, name)
        targets.port(port, name)
    except InvalidParameter:
        raise InvalidParameter(name, "API 地址应为 host:port") from None
    return value


def _check(pattern: re.Pattern[str], values: dict[str, str], flag: str, name: str) -> str:
    value = values.get(flag, "")
    if flag in values and not pattern.fullmatch(value):
        raise InvalidParameter(name, f"{flag} 格式不正确")
    return value


def parse_join_command(text: str, name: str = "join_command") -> JoinCommand:
    """Parse `kubeadm join <host:port> --token ... --discovery-token-ca-cert-hash sha256:...`."""
    words = _words(text, name)
    if words[:2] != ["kubeadm", "join"]:
        raise InvalidParameter(name, "应以 kubeadm join 开头")
    positional, values, control_plane = _flags(words[2:], name)
    if len(positional) != 1:
        raise InvalidParameter(name, "应有且只有一个 API 地址 (host:port)")
    for required in ("--token", "--discovery-token-ca-cert-hash"):
        if required not in values:
            raise InvalidParameter(name, f"缺少 {required}")
    return JoinCommand(
        endpoint=_endpoint(positional[0], name),
        token=_check(JOIN_TOKEN, values, "--token", name),
        ca_cert_hash=_check(CA_CERT_HASH, values, "--discovery-token-ca-cert-hash", name),
        control_plane=control_plane,
        certificate_key=_check(CERTIFICATE_KEY, values, "--certificate-key", name),
        cri_socket=_check(CRI_SOCKET, values, "--cri-socket", name),
    )
