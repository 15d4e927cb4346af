from kboss.ids import ALPHABET, ID_LENGTH, new_id


def test_ids_are_url_safe_and_never_read_as_a_command_line_option() -> None:
    ids = [new_id() for _ in range(5000)]
    assert len(set(ids)) == len(ids)
    assert all(len(i) == ID_LENGTH and set(i) <= set(ALPHABET) for i in ids)
    assert not [i for i in ids if i[0] in "-_"]  # `kboss op show <id>` must not take it for an option
    assert any("-" in i[1:] for i in ids)  # the rest keeps the spec's alphabet
