"""The SSH adapter against real OpenSSH servers: login, sudo, secrets, timeouts, uploads, streaming."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import replace
from pathlib import Path

import asyncssh
import pytest

from kboss.errors import AuthenticationFailed, CommandFailed, CommandTimeout
from kboss.ssh import MASK, ConnectOptions, KnownHostsStore, SshClient, SshTarget, connect
from tests.support.hostsystem import ensure_test_account
from tests.support.sshhosts import SshHost

pytestmark = pytest.mark.sshd


async def _leftover(client: SshClient, pattern: str) -> list[str]:
    """Live (non-zombie) processes on the host whose command line contains `pattern`."""
    ps = await client.run(["ps", "-eo", "stat=,args="], sudo=False)
    return [
        line
        for line in ps.stdout.splitlines()
        if pattern in line and not line.lstrip().startswith("Z") and "ps -eo" not in line
    ]


async def test_password_login_runs_as_the_account_on_that_host(
    ssh_host: SshHost, known_hosts: KnownHostsStore, fast: ConnectOptions
) -> None:
    async with connect(ssh_host.target(), known_hosts=known_hosts, options=fast) as client:
        result = await client.run(["sh", "-c", 'echo "$(id -un) $(hostname)"'], sudo=False, check=True)
    assert result.stdout == f"kbosst {ssh_host.hostname}\n"


async def test_root_key_login(ssh_host: SshHost, known_hosts: KnownHostsStore, fast: ConnectOptions) -> None:
    client = await connect(ssh_host.target("root"), known_hosts=known_hosts, options=fast)
    async with client:
        assert (await client.run(["id", "-u"], check=True)).stdout == "0\n"


async def test_wrong_password_fails_once_without_retry(
    ssh_host: SshHost, known_hosts: KnownHostsStore, fast: ConnectOptions, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="kboss.ssh")
    target = replace(ssh_host.target(), password="not-the-password")
    with pytest.raises(AuthenticationFailed) as err:
        await connect(target, known_hosts=known_hosts, options=fast)
    assert "kbosst" in err.value.message and "not-the-password" not in err.value.message
    attempts = [r for r in caplog.records if "attempt" in r.getMessage()]
    assert len(attempts) == 1
    assert ssh_host.log().count("Failed password for kbosst") == 1


async def test_wrong_key_passphrase_is_an_authentication_failure(
    ssh_host: SshHost, known_hosts: KnownHostsStore, fast: ConnectOptions
) -> None:
    key = asyncssh.generate_private_key("ssh-ed25519")
    # PKCS#8: decrypting OpenSSH-format encrypted keys would need the optional `bcrypt` package.
    pem = key.export_private_key("pkcs8-pem", passphrase="right").decode()
    target = replace(ssh_host.target(password=False), private_key=pem, passphrase="wrong")
    with pytest.raises(AuthenticationFailed, match="私钥"):
        await connect(target, known_hosts=known_hosts, options=fast)


async def test_sudo_with_password_for_non_root_account(
    ssh_host: SshHost, known_hosts: KnownHostsStore, fast: ConnectOptions
) -> None:
    async with connect(ssh_host.target(), known_hosts=known_hosts, options=fast) as client:
        assert (await client.run(["id", "-u"], check=True)).stdout == "0\n"
        # The password line is consumed by sudo; the command gets exactly our input.
        assert (await client.run(["cat"], input="payload\n", check=True)).stdout == "payload\n"
        piped = await client.run("id -un | tr a-z A-Z", check=True)
        assert piped.stdout == "ROOT\n"
        # The password is on no command line: if it were, `ps` would show it (masked to ******).
        ps = await client.run(["ps", "-eo", "args"], check=True)
        assert MASK not in ps.stdout and "sudo -k -S" in ps.stdout


async def test_nopasswd_sudo_account_without_password(
    ssh_host: SshHost, known_hosts: KnownHostsStore, fast: ConnectOptions
) -> None:
    account = ensure_test_account("kbosstnp", sudo_nopasswd=True)
    target = SshTarget(ssh_host.address, account.name, port=ssh_host.port, private_key=ssh_host.lab.client_key)
    async with connect(target, known_hosts=known_hosts, options=fast) as client:
        assert (await client.run(["id", "-u"], check=True)).stdout == "0\n"
        # No password line may precede the input: sudo would not read it and the command would.
        assert (await client.run(["cat"], input="exact\n", check=True)).stdout == "exact\n"


async def test_sudo_with_wrong_password_fails_with_masked_message(
    ssh_host: SshHost, known_hosts: KnownHostsStore, fast: ConnectOptions
) -> None:
    target = replace(ssh_host.target(password=False, key=True), password="bad-sudo-pw")
    async with connect(target, known_hosts=known_hosts, options=fast) as client:
        with pytest.raises(CommandFailed) as err:
            await client.run(["id", "-u"], check=True, input="bad-sudo-pw\n")
    assert err.value.exit_status != 0 and "bad-sudo-pw" not in str(err.value)


async def test_secrets_never_appear_in_results_errors_or_logs(
    ssh_host: SshHost, known_hosts: KnownHostsStore, fast: ConnectOptions, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="kboss.ssh")
    target = ssh_host.target()
    token = "tok-9f8e7d6c5b"
    command = f"echo join --token {token}; echo {target.password} >&2; exit 4"
    async with connect(target, known_hosts=known_hosts, options=fast) as client:
        result = await client.run(command, sudo=False, secrets=[token])
        with pytest.raises(CommandFailed) as err:
            await client.run(command, sudo=False, secrets=[token], check=True)
        async with client.stream(command, sudo=False, secrets=[token]) as out:
            lines = [line async for line in out]
    assert result.stdout == f"join --token {MASK}\n" and result.stderr == f"{MASK}\n"
    assert lines == [f"join --token {MASK}", MASK]
    texts = [str(err.value), caplog.text, repr(result), repr(target)]
    assert err.value.exit_status == 4 and MASK in str(err.value)
    assert all(token not in t and str(target.password) not in t for t in texts)


async def test_failed_command_reports_exit_status_and_output_tail(
    ssh_host: SshHost, known_hosts: KnownHostsStore, fast: ConnectOptions
) -> None:
    async with connect(ssh_host.target(), known_hosts=known_hosts, options=fast) as client:
        with pytest.raises(CommandFailed) as err:
            await client.run("seq 1 3000; echo last-line >&2; exit 7", sudo=False, check=True, name="seq")
    assert err.value.exit_status == 7
    assert len(err.value.output_tail) <= 2000 and err.value.output_tail.endswith("2999\n3000\nlast-line\n")
    assert err.value.message.startswith("seq 执行失败 (退出码 7)")


@pytest.mark.parametrize("sudo", [False, True])
async def test_command_timeout_raises_in_time_and_kills_the_remote_command(
    ssh_host: SshHost, known_hosts: KnownHostsStore, fast: ConnectOptions, sudo: bool
) -> None:
    async with connect(ssh_host.target(), known_hosts=known_hosts, options=fast) as client:
        started = time.monotonic()
        with pytest.raises(CommandTimeout, match="超时"):
            await client.run("echo started; sleep 31.5; echo never", sudo=sudo, timeout=1)
        assert 0.9 < time.monotonic() - started < 3
        await asyncio.sleep(0.3)
        assert await _leftover(client, "sleep 31.5") == []


async def test_upload_as_root_lands_with_mode_and_leaves_no_staging_file(
    ssh_host: SshHost, known_hosts: KnownHostsStore, fast: ConnectOptions
) -> None:
    remote = "/usr/local/bin/kbt-upload-test"
    async with connect(ssh_host.target(), known_hosts=known_hosts, options=fast) as client:
        try:
            await client.upload(b"#!/bin/sh\necho uploaded\n", remote, mode=0o750)
            stat = await client.run(["stat", "-c", "%a %U", remote], check=True)
            run = await client.run([remote], check=True)
            home = await client.run("ls -A ~", sudo=False, check=True)
        finally:
            await client.run(["rm", "-f", remote])
    assert stat.stdout == "750 root\n" and run.stdout == "uploaded\n"
    assert ".kboss-upload" not in home.stdout


async def test_upload_local_file_as_the_account(
    ssh_host: SshHost, known_hosts: KnownHostsStore, fast: ConnectOptions, tmp_path: Path
) -> None:
    local = tmp_path / "bundle.bin"
    local.write_bytes(bytes(range(256)) * 512)
    async with connect(ssh_host.target(), known_hosts=known_hosts, options=fast) as client:
        await client.upload(local, "bundle.bin", mode=0o600, sudo=False)
        stat = await client.run("stat -c '%a %U %s' ~/bundle.bin; rm ~/bundle.bin", sudo=False, check=True)
    assert stat.stdout == f"600 kbosst {256 * 512}\n"


async def test_stream_yields_lines_as_they_come(
    ssh_host: SshHost, known_hosts: KnownHostsStore, fast: ConnectOptions
) -> None:
    async with connect(ssh_host.target(), known_hosts=known_hosts, options=fast) as client:
        arrivals: list[tuple[str, float]] = []
        with pytest.raises(CommandFailed) as err:
            async with client.stream("echo one; sleep 1; echo two >&2; exit 3", check=True) as out:
                async for line in out:
                    arrivals.append((line, time.monotonic()))
    assert [line for line, _ in arrivals] == ["one", "two"]
    # Buffered output would arrive all at once at the end; streamed lines arrive a second apart.
    assert arrivals[1][1] - arrivals[0][1] > 0.7
    assert err.value.exit_status == 3 and out.result is not None and out.result.exit_status == 3


async def test_stream_left_early_kills_the_remote_command(
    ssh_host: SshHost, known_hosts: KnownHostsStore, fast: ConnectOptions
) -> None:
    async with connect(ssh_host.target(), known_hosts=known_hosts, options=fast) as client:
        async with client.stream("echo first; sleep 32.5", sudo=False) as out:
            async for line in out:
                assert line == "first"
                break
        await asyncio.sleep(0.3)
        assert await _leftover(client, "sleep 32.5") == []
        assert out.result is None
