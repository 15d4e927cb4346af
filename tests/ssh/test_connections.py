"""Connection trouble against real sshd hosts: host keys, refused/unreachable/dropped, retries, fan-out."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import replace

import pytest

from kboss.errors import ConnectionRefused, HostKeyChanged, HostUnreachable
from kboss.ssh import ConnectionDropped, ConnectOptions, KnownHostsStore, SshTarget, connect, run_many
from tests.support.sshhosts import SshHost, SshLab, silent_port

pytestmark = pytest.mark.sshd


def _attempts(caplog: pytest.LogCaptureFixture) -> int:
    return sum("attempt" in record.getMessage() for record in caplog.records)


async def test_first_contact_records_the_host_key(
    ssh_host: SshHost, known_hosts: KnownHostsStore, fast: ConnectOptions
) -> None:
    async with connect(ssh_host.target(), known_hosts=known_hosts, options=fast):
        pass
    recorded = known_hosts.lookup(ssh_host.address, ssh_host.port)
    assert recorded is not None
    assert recorded.get_fingerprint("sha256") == ssh_host.host_key_fingerprint


@pytest.mark.parametrize("key_type", ["ed25519", "rsa"])
async def test_changed_host_key_is_refused_before_any_password_is_sent(
    ssh_host: SshHost, known_hosts: KnownHostsStore, fast: ConnectOptions, key_type: str
) -> None:
    async with connect(ssh_host.target(), known_hosts=known_hosts, options=fast):
        pass
    old = ssh_host.host_key_fingerprint
    ssh_host.restart(new_host_key=True, key_type=key_type)
    with pytest.raises(HostKeyChanged) as err:
        await connect(ssh_host.target(), known_hosts=known_hosts, options=fast)
    assert ssh_host.address in err.value.message and old in err.value.message
    if key_type == "ed25519":  # same type: both fingerprints are named
        assert ssh_host.host_key_fingerprint in err.value.message
    log_after_restart = ssh_host.log().rsplit("Server listening", 1)[1]
    assert "password for" not in log_after_restart  # neither accepted nor failed: never tried
    known_hosts.forget(ssh_host.address, ssh_host.port)  # the operator accepts the new key
    async with connect(ssh_host.target(), known_hosts=known_hosts, options=fast):
        pass


async def test_concurrent_first_contacts_record_one_key(
    ssh_host: SshHost, known_hosts: KnownHostsStore, fast: ConnectOptions
) -> None:
    async def once() -> None:
        async with connect(ssh_host.target(password=False, key=True), known_hosts=known_hosts, options=fast):
            pass

    await asyncio.gather(*(once() for _ in range(8)))
    assert len(known_hosts.path.read_text().splitlines()) == 1


async def test_closed_port_is_retried_then_refused(
    ssh_host: SshHost, known_hosts: KnownHostsStore, fast: ConnectOptions, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="kboss.ssh")
    ssh_host.stop()
    started = time.monotonic()
    with pytest.raises(ConnectionRefused, match="连接被拒绝") as err:
        await connect(ssh_host.target(), known_hosts=known_hosts, options=fast)
    assert f"{ssh_host.address}:{ssh_host.port}" in err.value.message
    assert _attempts(caplog) == 3
    assert time.monotonic() - started >= 0.15  # backoff 0.05 + 0.1


async def test_host_coming_back_during_retries_is_reached(
    ssh_host: SshHost, known_hosts: KnownHostsStore, fast: ConnectOptions
) -> None:
    ssh_host.stop()
    threading.Timer(0.3, ssh_host.start).start()
    options = replace(fast, attempts=6, backoff_initial=0.1)
    async with connect(ssh_host.target(), known_hosts=known_hosts, options=options) as client:
        assert (await client.run(["true"], sudo=False)).ok


async def test_silent_host_times_out_as_unreachable(known_hosts: KnownHostsStore) -> None:
    options = ConnectOptions(connect_timeout=0.5, attempts=2, backoff_initial=0.05)
    with silent_port() as port:
        started = time.monotonic()
        with pytest.raises(HostUnreachable, match="超时"):
            await connect(
                SshTarget("127.0.0.1", "kbosst", port=port, password="x"), known_hosts=known_hosts, options=options
            )
    assert 1.0 <= time.monotonic() - started < 2.5


async def test_no_route_is_unreachable(ssh_host: SshHost, known_hosts: KnownHostsStore, fast: ConnectOptions) -> None:
    if ssh_host.netns is None:
        pytest.skip("needs netns mode (a route to a test address can only be removed there)")
    ssh_host.set_unreachable(True)
    try:
        with pytest.raises(HostUnreachable, match="主机不可达"):
            await connect(ssh_host.target(), known_hosts=known_hosts, options=replace(fast, attempts=1))
    finally:
        ssh_host.set_unreachable(False)


async def test_connection_dropped_mid_command(
    ssh_host: SshHost, known_hosts: KnownHostsStore, fast: ConnectOptions
) -> None:
    async with connect(ssh_host.target(), known_hosts=known_hosts, options=fast) as client:
        task = asyncio.create_task(client.run("sleep 20", sudo=False))
        await asyncio.sleep(0.5)
        assert ssh_host.drop_connections() > 0
        started = time.monotonic()
        with pytest.raises(ConnectionDropped, match="中断"):
            await task
        assert time.monotonic() - started < 3


async def test_run_many_ten_hosts_in_parallel(
    ssh_lab: SshLab, known_hosts: KnownHostsStore, fast: ConnectOptions
) -> None:
    hosts = ssh_lab.add_hosts(10)
    try:
        hosts[3].stop()
        delay = 0.5

        async def work(target: SshTarget) -> str:
            async with connect(target, known_hosts=known_hosts, options=replace(fast, attempts=1)) as client:
                result = await client.run(f"sleep {delay}; hostname", sudo=False, check=True)
                return result.stdout.strip()

        started = time.monotonic()
        outcomes = await run_many([h.target() for h in hosts], work, concurrency=10)
        elapsed = time.monotonic() - started
    finally:
        for host in hosts:
            host.close()
    assert isinstance(outcomes[3].error, ConnectionRefused)
    assert [o.value for i, o in enumerate(outcomes) if i != 3] == [h.hostname for i, h in enumerate(hosts) if i != 3]
    assert elapsed < 10 * delay / 2  # concurrent, not one after another
    assert len(known_hosts.path.read_text().splitlines()) == 9
