"""Fixtures for tests against real OpenSSH test hosts (see tests/support/sshhosts.py); used by every test folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kboss.ssh import ConnectOptions, KnownHostsStore
from tests.support.hostsystem import ensure_test_account
from tests.support.sshhosts import SshHost, SshLab, is_root

# Tests must fail fast and deterministically: short backoff, a few seconds to connect.
FAST = ConnectOptions(connect_timeout=3.0, command_timeout=20.0, attempts=3, backoff_initial=0.05)


@pytest.fixture(scope="session")
def ssh_lab() -> Iterator[SshLab]:
    if not is_root():
        pytest.skip("真实 sshd 测试主机需要 root 权限 (needs root: useradd, sshd, network namespaces)")
    with SshLab(ensure_test_account()) as lab:
        yield lab


@pytest.fixture
def ssh_host(ssh_lab: SshLab) -> Iterator[SshHost]:
    host = ssh_lab.add_host()
    yield host
    host.close()


@pytest.fixture
def known_hosts(tmp_path: Path) -> KnownHostsStore:
    return KnownHostsStore(tmp_path / "known_hosts")


@pytest.fixture
def fast() -> ConnectOptions:
    return FAST
