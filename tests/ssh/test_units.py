"""Unit tests of the SSH adapter parts that need no server: quoting, sudo wrapping, redaction,
the known-hosts store, retry policy, fan-out."""

from __future__ import annotations

import asyncio
import shlex
import threading
from pathlib import Path

import asyncssh
import pytest

from kboss.ssh import MASK, ConnectOptions, KnownHostsStore, Redactor, SshTarget, quote, run_many
from kboss.ssh.commands import SudoMode, prepare
from kboss.ssh.stream import exit_code


def test_quote_neutralises_shell_syntax() -> None:
    evil = "x; rm -rf / #$(reboot)`id`"
    assert shlex.split(f"echo {quote(evil)}") == ["echo", evil]


def test_argv_is_quoted_and_bounded_by_remote_timeout() -> None:
    prepared = prepare(["touch", "/tmp/a b"], SudoMode.DIRECT, None, None, 10)
    assert shlex.split(prepared.line) == ["timeout", "-k", "5", "12.000", "touch", "/tmp/a b"]


def test_sudo_password_goes_to_stdin_never_the_command_line() -> None:
    prepared = prepare("echo hi | tee /x", SudoMode.PASSWORD, "s3cr3t-pw", "data", 5)
    assert "s3cr3t-pw" not in prepared.line
    assert prepared.stdin == "s3cr3t-pw\ndata"
    argv = shlex.split(prepared.line)
    assert argv[:6] == ["sudo", "-k", "-S", "-p", "", "--"]
    assert argv[-3:] == ["sh", "-c", "echo hi | tee /x"]  # the whole pipeline runs as root


def test_nopasswd_sudo_keeps_stdin_for_the_command() -> None:
    prepared = prepare(["cat"], SudoMode.NOPASSWD, "pw", "data", None)
    assert shlex.split(prepared.line) == ["sudo", "-n", "--", "cat"]
    assert prepared.stdin == "data"


def test_target_repr_hides_secrets() -> None:
    target = SshTarget("10.0.0.5", "ops", password="hunter2!", private_key="-----BEGIN KEY-----\nAAAA\n")
    text = repr(target) + str(target)
    assert "hunter2" not in text and "AAAA" not in text
    assert "10.0.0.5" in text and "password+private_key" in text


def test_redactor_masks_secrets_and_key_lines() -> None:
    key = asyncssh.generate_private_key("ssh-ed25519").export_private_key().decode()
    redact = Redactor(["pw1", None, "", key]).with_secrets(["tok-123"])
    body_line = key.splitlines()[1]
    text = redact(f"a pw1 b tok-123 c {body_line} d\n{key}")
    assert "pw1" not in text and "tok-123" not in text and body_line not in text
    assert text.startswith(f"a {MASK} b {MASK} c {MASK} d")


def test_backoff_is_exponential_and_capped() -> None:
    options = ConnectOptions(backoff_initial=0.5, backoff_max=3.0)
    assert [options.backoff(n) for n in (1, 2, 3, 4, 5)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_exit_code_reports_signals_like_a_shell() -> None:
    done = asyncssh.SSHCompletedProcess(None, "x", None, None, ("KILL", False, "", ""), -9, "", "")
    assert exit_code(done) == 137
    dropped = asyncssh.SSHCompletedProcess(None, "x", None, None, None, None, "", "")
    assert exit_code(dropped) is None


def _key() -> asyncssh.SSHKey:
    return asyncssh.generate_private_key("ssh-ed25519").convert_to_public()


def test_known_hosts_trust_on_first_use(tmp_path: Path) -> None:
    store = KnownHostsStore(tmp_path / "known_hosts")
    first, other = _key(), _key()
    assert store.check_or_record("h1", 2222, first) is None
    assert store.check_or_record("h1", 2222, first) is None
    known = store.check_or_record("h1", 2222, other)
    assert known is not None and known.public_data == first.public_data
    assert (tmp_path / "known_hosts").read_text().startswith("[h1]:2222 ssh-ed25519 ")
    assert store.forget("h1", 2222) and store.check_or_record("h1", 2222, other) is None


def test_known_hosts_concurrent_first_contacts_never_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "known_hosts"
    keys = [_key() for _ in range(40)]
    contenders = [_key() for _ in range(8)]
    verdicts: list[bool] = []

    def record(i: int) -> None:
        KnownHostsStore(path).check_or_record(f"10.0.0.{i}", 22, keys[i])

    def race(i: int) -> None:  # eight different keys claim one new host at once: exactly one wins
        verdicts.append(KnownHostsStore(path).check_or_record("contested", 22, contenders[i]) is None)

    threads = [threading.Thread(target=record, args=(i,)) for i in range(40)]
    threads += [threading.Thread(target=race, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    lines = path.read_text().splitlines()
    assert len(lines) == 41 and all(len(line.split()) == 3 for line in lines)
    assert verdicts.count(True) == 1


async def test_run_many_bounds_concurrency_and_captures_errors() -> None:
    running = peak = 0

    async def work(n: int) -> int:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.01)
        running -= 1
        if n == 3:
            raise ValueError("host 3 is broken")
        return n * 10

    outcomes = await run_many(list(range(10)), work, concurrency=4)
    assert peak == 4
    assert [o.target for o in outcomes] == list(range(10))
    assert isinstance(outcomes[3].error, ValueError) and not outcomes[3].ok
    assert [o.value for o in outcomes if o.ok] == [0, 10, 20, 40, 50, 60, 70, 80, 90]
    with pytest.raises(ValueError):
        await run_many([1], work, concurrency=0)
