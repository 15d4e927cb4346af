"""The one secrets module: known values, secret shapes and names (encoded too), a bounded registry."""

from __future__ import annotations

from kboss.redaction import MASK, KnownSecrets, Redactor, is_secret_name, redact, redact_shapes

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
