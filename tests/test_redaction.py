"""The one secrets module: known values, secret shapes and names (encoded too), a bounded registry."""

from __future__ import annotations

import logging

import pytest

from kboss.logs import install_redaction
from kboss.redaction import (
    MASK,
    KnownSecrets,
    Redactor,
    canonical_name,
    is_harmless_name,
    is_secret_name,
    redact,
    redact_fields,
    redact_query,
    redact_shapes,
    redact_url,
)

KEY = "-----BEGIN KEY-----\nAAAABBBBCCCCDDDD\nEEEEFFFFGGGGHHHH\n-----END KEY-----"


def test_known_values_are_masked_whole_and_line_by_line() -> None:
    mask = Redactor([KEY, "hunter22", "  ", None])
    assert mask("pw hunter22, key line EEEEFFFFGGGGHHHH, about") == f"pw {MASK}, key line {MASK}, about"
    assert Redactor(["pw1"])("a pw1 b") == f"a {MASK} b"  # short, but a password
    assert mask(KEY) == MASK
    wider = mask.with_secrets(["s3cr3t-value"])
    assert wider("s3cr3t-value hunter22") == f"{MASK} {MASK}" and mask("s3cr3t-value") == "s3cr3t-value"
    mask.add("later-read")
    assert mask("later-read") == MASK


def test_secret_named_fields_are_masked_in_every_syntax_and_encoding() -> None:
    cases = {
        "GET /pcapi/x?host=h&private_key=MIIEvQ&port=22": f"GET /pcapi/x?host=h&private_key={MASK}&port=22",
        "pssswor%64=hunter2&user=root": f"pssswor%64={MASK}&user=root",
        "psssw%256Frd=x1y2": f"psssw%256Frd={MASK}",  # doubly encoded
        '{"api_pwd": "Kyy@123456", "name": "n"}': f'{{"api_pwd": {MASK}, "name": "n"}}',
        "token: abc.def\nclient-key-data: LS0tLS1CRUdJTg==": f"token: {MASK}\nclient-key-data: {MASK}",
        "--password=s3cr3t --user=ops": f"--password={MASK} --user=ops",
    }
    for text, expected in cases.items():
        assert redact_shapes(text) == expected, text
    assert (
        redact_shapes("state=failed, cpu=4, 参数 password 无效: 缺少该参数")
        == "state=failed, cpu=4, 参数 password 无效: 缺少该参数"
    )


def test_join_tokens_and_certificate_keys_are_masked_but_the_ca_hash_stays() -> None:
    ca_hash = "sha256:" + "a" * 64
    text = f"kubeadm join 10.0.0.1:6443 --token abcdef.0123456789abcdef --discovery-token-ca-cert-hash {ca_hash}"
    assert redact_shapes(text) == f"kubeadm join 10.0.0.1:6443 --token {MASK} --discovery-token-ca-cert-hash {ca_hash}"
    assert redact_shapes("--certificate-key " + "0" * 64) == f"--certificate-key {MASK}"


def test_names_say_what_is_secret() -> None:
    assert all(map(is_secret_name, ["password", "psssword", "api_pwd", "kubeconfig", "ssh_key", "pssswor%64"]))
    assert not any(map(is_secret_name, ["host", "port", "user", "cpcid", "%zz"]))


def test_the_registry_of_seen_values_is_bounded() -> None:
    known = KnownSecrets(limit=3)
    for value in ("first-secret", "second-secret", "third-secret", "fourth-secret"):
        known.register(value)
    assert len(known) == 3
    assert known("first-secret fourth-secret") == f"first-secret {MASK}"  # the oldest went first
    known.register("abc")  # too short to register
    assert len(known) == 3


def test_redact_is_what_logs_and_stored_messages_get() -> None:
    assert redact("login password=hunter2 from 10.0.0.1") == f"login password={MASK} from 10.0.0.1"


def test_a_long_line_without_fields_is_redacted_in_one_pass() -> None:
    # 200,000 name characters with no `=`: once tried from every position (about an hour), now one scan.
    blob = "QUJD" * 50_000
    assert redact_shapes(blob + " password=x") == blob + f" password={MASK}"


@pytest.mark.parametrize(
    ("encoded", "name"),
    [("pssswor%64", "psssword"), ("API%5FPWD", "api_pwd"), ("%2570assword", "password"), ("a+b", "a b"), ("ID", "id")],
)
def test_names_are_read_as_a_server_reads_them(encoded: str, name: str) -> None:
    assert canonical_name(encoded) == name


def test_only_names_on_the_allow_list_keep_their_values_in_a_query_string() -> None:
    query = "cpcid=c1&page=2&ROWS=10&state=ok&private_key=MIIE&pssswor%64=x&colour=red&%2569d=c2&Kyy%40bare"
    expected = f"cpcid=c1&page=2&ROWS=10&state=ok&private_key={MASK}&pssswor%64={MASK}&colour={MASK}&%2569d=c2&{MASK}"
    assert redact_query(query) == expected
    assert is_harmless_name("%6Eame") and not is_harmless_name("name_of_my_password")


def test_a_name_that_is_not_a_name_is_masked_too() -> None:
    # A value pasted where a name goes (`?Kyy@1=x`, `?a%20b=`) is not shown either: the name may be the secret.
    assert redact_query("Kyy%401=x&a+b=y&follow") == f"{MASK}={MASK}&{MASK}={MASK}&follow"


def test_request_targets_keep_their_path_and_lose_unlisted_values() -> None:
    assert redact_url("/pcapi/api/v1/native/provision/plan?role=master&join_command=kubeadm%20join") == (
        f"/pcapi/api/v1/native/provision/plan?role=master&join_command={MASK}"
    )
    assert redact_url("/api/v1/centers") == "/api/v1/centers"
    line = '127.0.0.1:5 - "GET /dev/cpcc/x.dspy?cpcid=c1&api%5Fpwd=s3cr3t HTTP/1.1" 200 是否继续?'
    assert redact(line) == f'127.0.0.1:5 - "GET /dev/cpcc/x.dspy?cpcid=c1&api%5Fpwd={MASK} HTTP/1.1" 200 是否继续?'


def test_json_bodies_show_only_harmless_values() -> None:
    body = {"name": "n", "API_PWD": "s", "resources": [{"type": "gpu", "amount": 2, "note": "s"}], "extra": {"id": 1}}
    assert redact_fields(body) == {
        "name": "n",
        "API_PWD": MASK,
        "resources": [{"type": "gpu", "amount": 2, "note": MASK}],
        "extra": {"id": 1},
    }


def test_every_record_is_redacted_when_made_whatever_handler_writes_it() -> None:
    install_redaction()
    seen: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = seen.append  # type: ignore[method-assign]
    access, root = logging.getLogger("uvicorn.access"), logging.getLogger()
    level = access.level
    access.setLevel(logging.INFO)
    # Added after installing, with no filter of their own; on the access logger too, since uvicorn's logging setup
    # (any server a test started) keeps its records from reaching the root.
    root.addHandler(handler)
    access.addHandler(handler)
    propagate, access.propagate = access.propagate, False
    try:
        target = "/pcapi/x?host=h&PRIVATE%5FKEY=MIIEsecret&page=1"
        access.info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:1", "GET", target, "1.1", 200)
        logging.getLogger("kboss.test-redaction").warning("got %s", {"api_pwd": "Kyy@123456"})
    finally:
        root.removeHandler(handler)
        access.removeHandler(handler)
        access.setLevel(level)
        access.propagate = propagate
    line, other = (record.getMessage() for record in seen)
    assert line == f'127.0.0.1:1 - "GET /pcapi/x?host=h&PRIVATE%5FKEY={MASK}&page=1 HTTP/1.1" 200'
    assert isinstance(seen[0].args, tuple) and len(seen[0].args) == 5  # uvicorn's formatters unpack them
    assert "Kyy@123456" not in other
