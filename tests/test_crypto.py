"""The secret box and its key ring: the first key seals, every key opens, a key file's ring is followed live."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kboss.crypto import KeyRing, SecretBox, SecretUnreadable, is_sealed, parse_keys


def test_the_first_key_seals_and_every_key_opens() -> None:
    old = SecretBox("old").seal("s3cret")
    ring = SecretBox(KeyRing(["new", "old"]))
    assert ring.open(old) == "s3cret" and not ring.sealed_with_primary(old)
    resealed = ring.reseal(old)
    assert resealed != old and ring.sealed_with_primary(resealed) and SecretBox("new").open(resealed) == "s3cret"
    with pytest.raises(SecretUnreadable):
        SecretBox("old").open(resealed)
    assert ring.seal(resealed) == resealed  # never sealed twice
    assert is_sealed(ring.reseal("plain")) and ring.open(ring.reseal("plain")) == "plain"


def test_keys_are_read_from_the_variable_or_the_file_and_empty_rings_are_refused() -> None:
    assert parse_keys("new, old\n") == ("new", "old")
    assert parse_keys("new\nold\n\n") == ("new", "old")
    with pytest.raises(ValueError):
        KeyRing([])


def test_a_key_file_is_followed_when_it_changes(tmp_path: Path) -> None:
    path = tmp_path / "secret.key"
    path.write_text("old\n")
    box = SecretBox(KeyRing(path=path))
    sealed_old = box.seal("a")
    path.write_text("new\nold\n")
    os.utime(path, ns=(1, 1))  # a change within the clock's resolution is still a change of stamp
    assert box.ring.primary == "new" and SecretBox("new").open(box.seal("b")) == "b"
    assert box.open(sealed_old) == "a"
    path.write_text("")  # caught half-written: the keys read before stay
    assert box.ring.current() == ("new", "old")
