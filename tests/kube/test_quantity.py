from decimal import Decimal

import pytest

from kboss.errors import InvalidParameter
from kboss.kube.quantity import (
    cpu_millicores,
    format_bytes,
    format_millicores,
    memory_bytes,
    parse_quantity,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("100m", "0.1"),
        ("1", "1"),
        ("1.5", "1.5"),
        (".5", "0.5"),
        ("512Mi", "536870912"),
        ("8Gi", "8589934592"),
        ("1Ki", "1024"),
        ("1Ti", "1099511627776"),
        ("1e3", "1000"),
        ("1E3", "1000"),
        ("2e-3", "0.002"),
        ("1k", "1000"),
        ("1M", "1000000"),
        ("1G", "1000000000"),
        ("1E", "1000000000000000000"),  # E alone is the exa suffix, not an exponent
        ("250u", "0.00025"),
        ("5n", "0.000000005"),
        (" 2 ", "2"),
        (3, "3"),
    ],
)
def test_quantities_parse_exactly_to_base_units(text: str | int, expected: str) -> None:
    assert parse_quantity(text, "q") == Decimal(expected)


def test_decimal_quantities_add_up_without_float_error() -> None:
    total = parse_quantity("0.1", "a") + parse_quantity("0.2", "b")
    assert total == parse_quantity("300m", "c")


@pytest.mark.parametrize(
    ("text", "millicores"),
    [("100m", 100), ("1", 1000), ("1.5", 1500), ("0.5m", 1), ("1n", 1), ("2500m", 2500)],
)
def test_cpu_rounds_up_to_whole_millicores_like_the_scheduler(text: str, millicores: int) -> None:
    assert cpu_millicores(text, "cpu") == millicores


@pytest.mark.parametrize(
    ("text", "size"), [("512Mi", 512 * 2**20), ("1e3", 1000), ("1.5Ki", 1536), ("0.5", 1), ("64", 64)]
)
def test_memory_is_whole_bytes_rounded_up(text: str, size: int) -> None:
    assert memory_bytes(text, "memory") == size


@pytest.mark.parametrize(
    "text", ["", " ", "abc", "1K", "1 Mi", "Mi", "1e", "1.2.3", "--1", "1Mi ;rm -rf /", "1e40", "-1", "-100m", "9Ei"]
)
def test_malformed_or_negative_quantities_are_refused_naming_the_parameter(text: str) -> None:
    with pytest.raises(InvalidParameter) as caught:
        parse_quantity(text, "source_memrate")
    assert caught.value.parameter == "source_memrate"
    assert "source_memrate" in caught.value.message


def test_the_offending_text_is_quoted_back() -> None:
    with pytest.raises(InvalidParameter, match="12x"):
        parse_quantity("12x", "source_cpurate")


@pytest.mark.parametrize("value", [1.5, True, None, [1]])
def test_floats_and_other_types_are_refused(value: object) -> None:
    with pytest.raises(InvalidParameter):
        parse_quantity(value, "q")  # type: ignore[arg-type]


def test_canonical_texts() -> None:
    assert format_millicores(1500) == "1500m"
    assert format_millicores(2000) == "2"
    assert format_bytes(memory_bytes("512Mi", "m")) == "512Mi"
    assert format_bytes(memory_bytes("49Gi", "m")) == "49Gi"
    assert format_bytes(1536) == "1536"  # 1.5Ki has no exact binary suffix
    assert format_bytes(1000) == "1000"
    assert parse_quantity(format_bytes(123456789), "m") == 123456789
