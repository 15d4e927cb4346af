"""The test-host library itself: substitutes stay inside their host, hosts have their own identity."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from kboss.ssh import ConnectOptions, KnownHostsStore, connect
from tests.support.sshhosts import SshLab, Substitute, write_executable

pytestmark = pytest.mark.sshd

FAKE = """#!/bin/sh
echo "substitute $(basename "$0") $*"
"""


async def test_substitutes_replace_programs_only_inside_their_host(
    ssh_lab: SshLab, known_hosts: KnownHostsStore, fast: ConnectOptions, tmp_path: Path
) -> None:
    fake = write_executable(tmp_path / "fake", FAKE)
    substitutes = [
        Substitute(fake, "/usr/bin/kubeadm"),  # missing here: created in a private overlay
        Substitute(fake, "/usr/bin/apt-get"),  # exists: bound over in the private namespace
        Substitute(fake, "/sbin/modprobe"),  # /sbin is a symlink to /usr/sbin on merged-/usr Debian
        Substitute(fake, "/usr/bin/awk"),  # a symlink (alternatives): replaced, not followed
    ]
    substituted, plain = ssh_lab.add_host(substitutes=substitutes), ssh_lab.add_host()
    try:
        async with connect(substituted.target(), known_hosts=known_hosts, options=fast) as client:
            inside = await client.run(
                "kubeadm init; apt-get install x; /sbin/modprobe br_netfilter; "
                "readlink /usr/bin/awk || echo not-a-link",
                sudo=True,
                check=True,
            )
        async with connect(plain.target(), known_hosts=known_hosts, options=fast) as client:
            other = await client.run("command -v kubeadm || echo none; apt-get --version | head -n 1", sudo=False)
    finally:
        substituted.close()
        plain.close()
    assert inside.stdout.splitlines() == [
        "substitute kubeadm init",
        "substitute apt-get install x",
        "substitute modprobe br_netfilter",
        "not-a-link",
    ]
    assert other.stdout.splitlines()[0] == "none" and other.stdout.splitlines()[1].startswith("apt ")
    _assert_this_machine_untouched()


def _assert_this_machine_untouched() -> None:
    assert not os.path.lexists("/usr/bin/kubeadm") and not os.path.lexists("/usr/sbin/modprobe")
    assert os.path.islink("/usr/bin/awk")
    assert subprocess.run(["apt-get", "--version"], capture_output=True, text=True).stdout.startswith("apt ")


async def test_each_host_has_its_own_name_and_address(
    ssh_lab: SshLab, known_hosts: KnownHostsStore, fast: ConnectOptions
) -> None:
    hosts = ssh_lab.add_hosts(2)
    try:
        names = []
        for host in hosts:
            async with connect(host.target(), known_hosts=known_hosts, options=fast) as client:
                names.append((await client.run("hostname; hostname -i", sudo=False, check=True)).stdout.split())
    finally:
        for host in hosts:
            host.close()
    assert names == [[h.hostname, h.address] for h in hosts]
    if ssh_lab.mode == "netns":
        assert len({h.address for h in hosts}) == 2 and all(h.address.startswith("10.231.") for h in hosts)
    assert os.uname().nodename not in {h.hostname for h in hosts}
