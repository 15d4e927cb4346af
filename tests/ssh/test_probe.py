"""Host probe: parsing of captured outputs, and the real script on real sshd hosts."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from kboss.agent.probe import GpuGroup, parse_lspci, parse_nvidia_smi, parse_probe_output, probe, probe_script
from kboss.errors import SSHError
from kboss.ssh import ConnectOptions, KnownHostsStore, connect
from tests.support.sshhosts import SshHost, SshLab, Substitute, write_executable

NVIDIA_SMI_8xA100 = "\n".join(["NVIDIA A100-SXM4-80GB, 81920 MiB"] * 8) + "\n"
NVIDIA_SMI_MIXED = """\
Tesla T4, 15360 MiB
NVIDIA GeForce RTX 4090, 24564 MiB
Tesla T4, 15360 MiB
NVIDIA H100 80GB HBM3, [N/A]
"""
LSPCI = """\
00:00.0 Host bridge: Intel Corporation 440FX - 82441FX PMC [Natoma] (rev 02)
00:02.0 VGA compatible controller: Cirrus Logic GD 5446
3b:00.0 3D controller: NVIDIA Corporation GA100 [A100 PCIe 80GB] (rev a1)
3b:00.1 Audio device: NVIDIA Corporation GA102 High Definition Audio Controller (rev a1)
af:00.0 3D controller: NVIDIA Corporation GA100 [A100 PCIe 80GB] (rev a1)
d8:00.0 VGA compatible controller [0300]: NVIDIA Corporation TU102 [GeForce RTX 2080 Ti Rev. A] [10de:1e07] (rev a1)
"""
UBUNTU_GPU_NODE = """\
probe_version=1
os_id=ubuntu
os_version=22.04
os_name=Ubuntu 22.04.4 LTS
hostname=gpu-node-07
kernel=5.15.0-105-generic
arch=x86_64
cpu_model=Intel(R) Xeon(R) Platinum 8358 CPU @ 2.60GHz
cpu_cores=128
mem_total_kib=1056462848
swap_total_kib=8388604
disk=nvme0n1 3840755982336
disk=sda 480103981056
gpu_source=nvidia-smi
gpu_smi=NVIDIA A100-SXM4-80GB, 81920 MiB
gpu_smi=NVIDIA A100-SXM4-80GB, 81920 MiB
kubelet_path=/usr/bin/kubelet
kubelet_state=active
end=1
"""


def test_nvidia_smi_lines_are_grouped_by_model() -> None:
    assert parse_nvidia_smi(NVIDIA_SMI_8xA100.splitlines()) == [
        GpuGroup(model="NVIDIA A100-SXM4-80GB", memory_mib=81920, count=8)
    ]
    assert parse_nvidia_smi(NVIDIA_SMI_MIXED.splitlines()) == [
        GpuGroup(model="Tesla T4", memory_mib=15360, count=2),
        GpuGroup(model="NVIDIA GeForce RTX 4090", memory_mib=24564, count=1),
        GpuGroup(model="NVIDIA H100 80GB HBM3", memory_mib=None, count=1),
    ]


def test_lspci_nvidia_display_devices_only() -> None:
    assert parse_lspci(LSPCI.splitlines()) == [
        GpuGroup(model="NVIDIA Corporation GA100 [A100 PCIe 80GB]", memory_mib=None, count=2),
        GpuGroup(model="NVIDIA Corporation TU102 [GeForce RTX 2080 Ti Rev. A]", memory_mib=None, count=1),
    ]


def test_full_probe_output_of_a_gpu_node() -> None:
    facts = parse_probe_output(UBUNTU_GPU_NODE)
    assert (facts.os_id, facts.os_version, facts.hostname) == ("ubuntu", "22.04", "gpu-node-07")
    assert facts.cpu_cores == 128 and facts.memory_mib == 1031702
    assert facts.swap_on and facts.swap_mib == 8191
    assert [(d.name, d.size_gib) for d in facts.disks] == [("nvme0n1", 3577.0), ("sda", 447.1)]
    assert facts.gpu_count == 2 and facts.gpus[0].memory_mib == 81920
    assert facts.kubelet_installed and facts.kubelet_running


def test_truncated_probe_output_is_rejected() -> None:
    with pytest.raises(SSHError, match="不完整"):
        parse_probe_output(UBUNTU_GPU_NODE.replace("end=1\n", ""))


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck not installed (apt-get install shellcheck)")
def test_probe_script_passes_shellcheck(tmp_path: Path) -> None:
    script = tmp_path / "probe.sh"
    script.write_text(probe_script())
    result = subprocess.run(["shellcheck", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


@pytest.mark.sshd
async def test_probe_a_real_host(ssh_host: SshHost, known_hosts: KnownHostsStore, fast: ConnectOptions) -> None:
    async with connect(ssh_host.target(), known_hosts=known_hosts, options=fast) as client:
        facts = await probe(client)
    assert facts.os_id == "debian" and facts.os_version == "12"
    assert facts.hostname == ssh_host.hostname
    assert facts.cpu_cores >= 1 and facts.cpu_model and facts.memory_mib > 256
    assert facts.disks and all(d.size_gib > 0 for d in facts.disks)
    assert facts.gpus == [] and facts.gpu_count == 0
    assert not facts.kubelet_installed and not facts.kubelet_running


@pytest.mark.sshd
async def test_probe_reads_gpus_and_kubelet_from_substituted_tools(
    ssh_lab: SshLab, known_hosts: KnownHostsStore, fast: ConnectOptions, tmp_path: Path
) -> None:
    fake_smi = write_executable(
        tmp_path / "nvidia-smi",
        f"""#!/bin/sh
[ "$*" = "--query-gpu=name,memory.total --format=csv,noheader" ] || exit 9
printf '%s' '{NVIDIA_SMI_MIXED}'
""",
    )
    fake_kubelet = write_executable(tmp_path / "kubelet", "#!/bin/sh\necho v1.30.0\n")
    host = ssh_lab.add_host(
        substitutes=[Substitute(fake_smi, "/usr/bin/nvidia-smi"), Substitute(fake_kubelet, "/usr/bin/kubelet")]
    )
    try:
        async with connect(host.target(), known_hosts=known_hosts, options=fast) as client:
            facts = await probe(client)
    finally:
        host.close()
    assert facts.gpu_source == "nvidia-smi" and facts.gpu_count == 4
    assert facts.gpus[0] == GpuGroup(model="Tesla T4", memory_mib=15360, count=2)
    assert facts.kubelet_installed and not facts.kubelet_running
