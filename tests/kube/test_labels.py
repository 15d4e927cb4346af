import pytest

from kboss.errors import InvalidParameter
from kboss.kube.labels import (
    format_selector,
    parse_instance_label,
    parse_node_label,
    parse_selector,
    validate_label_key,
    validate_label_value,
)


@pytest.mark.parametrize(
    "key",
    [
        "app",
        "kyy-gpu",
        "a",
        "A.b_c-9",
        "kboss.io/gpu-model",
        "nvidia.com/gpu.product",
        "node-role.kubernetes.io/x",
        "x" * 63,
        f"{'a' * 253}/name",
    ],
)
def test_valid_keys_pass_unchanged(key: str) -> None:
    assert validate_label_key(key, "label") == key


@pytest.mark.parametrize(
    "key",
    [
        "",
        "-app",
        "app-",
        "x" * 64,
        "Example.com/x",
        "/x",
        "a/b/c",
        "a b",
        "a;b",
        "$(id)",
        "`id`",
        "a'b",
        'a"b',
        "prefix/",
        f"{'a' * 254}/name",
        "a|b",
        "a&b",
        "a>b",
    ],
)
def test_invalid_keys_are_refused_naming_the_parameter(key: str) -> None:
    with pytest.raises(InvalidParameter) as caught:
        validate_label_key(key, "label_key")
    assert caught.value.parameter == "label_key"
    assert "label_key" in caught.value.message


@pytest.mark.parametrize("value", ["", "true", "RTX5090-32G", "v1.2_3", "x" * 63])
def test_valid_values_pass_unchanged(value: str) -> None:
    assert validate_label_value(value, "label") == value


@pytest.mark.parametrize("value", ["x" * 64, "-true", "true-", "a/b", "a b", "a;b", "$(reboot)", "a=b", "a:b"])
def test_invalid_values_are_refused(value: str) -> None:
    with pytest.raises(InvalidParameter):
        validate_label_value(value, "label_value")


def test_node_labels_are_key_equals_value() -> None:
    assert parse_node_label("kyy-gpu=true", "labels") == ("kyy-gpu", "true")
    assert parse_node_label("kboss.io/gpu-model=A100-80G", "labels") == ("kboss.io/gpu-model", "A100-80G")
    assert parse_node_label("empty=", "labels") == ("empty", "")


def test_instance_labels_are_key_colon_value_or_key_equals_value() -> None:
    assert parse_instance_label("app:ubuntu3", "source_selflabel") == ("app", "ubuntu3")
    assert parse_instance_label("app=ubuntu3", "source_selflabel") == ("app", "ubuntu3")


@pytest.mark.parametrize("text", ["app", "", "=value", "app:ubuntu;reboot", "app:$(reboot)", "app: ubuntu", "a:b:c"])
def test_malformed_instance_labels_are_refused(text: str) -> None:
    with pytest.raises(InvalidParameter) as caught:
        parse_instance_label(text, "source_selflabel")
    assert caught.value.parameter == "source_selflabel"


def test_the_message_shows_the_offending_text_and_character() -> None:
    with pytest.raises(InvalidParameter) as caught:
        parse_node_label("app=ubuntu;reboot", "source_nodeselector")
    assert "ubuntu;reboot" in caught.value.message
    assert "';'" in caught.value.message


def test_selectors_are_comma_separated_pairs() -> None:
    assert parse_selector("kyy-gpu=false", "s") == {"kyy-gpu": "false"}
    assert parse_selector("kyy-gpu=true, topology.kubernetes.io/zone=a,", "s") == {
        "kyy-gpu": "true",
        "topology.kubernetes.io/zone": "a",
    }
    assert parse_selector("", "s") == {}
    assert parse_selector("a=1,a=1", "s") == {"a": "1"}


@pytest.mark.parametrize("text", ["a=1,a=2", "a=1;b=2", "a=1,b", "a=1 b=2", "a=`x`"])
def test_bad_selectors_are_refused(text: str) -> None:
    with pytest.raises(InvalidParameter) as caught:
        parse_selector(text, "source_nodeselector")
    assert caught.value.parameter == "source_nodeselector"


def test_selector_round_trip() -> None:
    assert format_selector(parse_selector("a=1,b.io/c=2", "s")) == "a=1,b.io/c=2"


def test_unlabel_refuses_a_different_value_naming_the_current_one() -> None:
    from kboss.errors import Conflict
    from kboss.kube.labels import check_unlabel

    check_unlabel("n1", "foo", "bar", {"foo": "bar"})
    check_unlabel("n1", "foo", None, {"foo": "bar"})
    check_unlabel("n1", "foo", "baz", {})
    with pytest.raises(Conflict, match='当前值为 "bar"'):
        check_unlabel("n1", "foo", "baz", {"foo": "bar"})
