"""Host probe: what a machine is (OS, CPU, memory, disks, GPUs, swap, kubelet), read over SSH.

`scripts/probe.sh` runs on the machine (piped to `sh -s`, nothing is left behind) and prints
`key=value` lines; all interpretation happens here, in Python, where it is unit-tested against
captured outputs of real machines.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from importlib import resources
from typing import Literal

from pydantic import BaseModel, ConfigDict

from kboss.errors import SSHError
from kboss.ssh import SshClient

PROBE_TIMEOUT = 120.0
_GIB = 1024**3


class Disk(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    size_gib: float


class GpuGroup(BaseModel):
    """Identical GPUs of one machine: model, memory of one card (MiB, None when unknown), how many."""

    model_config = ConfigDict(frozen=True)

    model: str
    memory_mib: int | None
    count: int


class HostFacts(BaseModel):
    model_config = ConfigDict(frozen=True)

    os_id: str
    os_version: str
    os_name: str
    hostname: str
    kernel: str
    arch: str
    cpu_model: str
    cpu_cores: int
    memory_mib: int
    swap_on: bool
    swap_mib: int
    disks: list[Disk]
    gpus: list[GpuGroup]
    gpu_source: Literal["nvidia-smi", "lspci", "none"]
    kubelet_installed: bool
    kubelet_running: bool

    @property
    def gpu_count(self) -> int:
        return sum(group.count for group in self.gpus)


def probe_script() -> str:
    return (resources.files("kboss.agent") / "scripts" / "probe.sh").read_text()


async def probe(client: SshClient, *, timeout: float = PROBE_TIMEOUT) -> HostFacts:  # noqa: ASYNC109
    """Run the probe unprivileged on the connected machine and return its facts."""
    result = await client.run(
        ["sh", "-s"], input=probe_script(), sudo=False, timeout=timeout, check=True, name="host probe"
    )
    return parse_probe_output(result.stdout)


def _group(models: Iterable[tuple[str, int | None]]) -> list[GpuGroup]:
    counts: dict[tuple[str, int | None], int] = {}
    for key in models:
        counts[key] = counts.get(key, 0) + 1
    return [GpuGroup(model=model, memory_mib=mem, count=n) for (model, mem), n in counts.items()]


_MIB = re.compile(r"^\s*(\d+)\s*MiB\s*$", re.IGNORECASE)


def parse_nvidia_smi(lines: Iterable[str]) -> list[GpuGroup]:
    """Lines of `nvidia-smi --query-gpu=name,memory.total --format=csv,noheader`,
    e.g. `NVIDIA A100-SXM4-80GB, 81920 MiB`; memory may be `[N/A]`."""
    found = []
    for line in lines:
        if not line.strip():
            continue
        # The name never contains a comma in practice, but split from the right to be safe.
        name, _, memory = line.rpartition(",") if "," in line else (line, "", "")
        match = _MIB.match(memory)
        found.append((name.strip(), int(match.group(1)) if match else None))
    return _group(found)


_PCI_CLASS = re.compile(r"(VGA compatible controller|3D controller|Display controller)", re.IGNORECASE)
_PCI_TAIL = re.compile(r"\s*\(rev [0-9a-f]+\)\s*$", re.IGNORECASE)
_PCI_IDS = re.compile(r"\s*\[[0-9a-f]{4}:[0-9a-f]{4}\]", re.IGNORECASE)


def parse_lspci(lines: Iterable[str]) -> list[GpuGroup]:
    """NVIDIA display-class lines of `lspci` (with or without -nn), e.g.
    `3b:00.0 3D controller: NVIDIA Corporation GA100 [A100 PCIe 80GB] (rev a1)`. No memory size."""
    found: list[tuple[str, int | None]] = []
    for line in lines:
        if not _PCI_CLASS.search(line) or "nvidia" not in line.lower():
            continue
        description = line.split(": ", 1)[1] if ": " in line else line
        description = _PCI_IDS.sub("", _PCI_TAIL.sub("", description)).strip()
        found.append((description, None))
    return _group(found)


def _fields(text: str) -> dict[str, list[str]]:
    fields: dict[str, list[str]] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            fields.setdefault(key.strip(), []).append(value.strip())
    return fields


def _int(fields: dict[str, list[str]], key: str) -> int:
    value = (fields.get(key) or [""])[0]
    return int(value) if value.isdigit() else 0


def _disks(values: Iterable[str]) -> list[Disk]:
    disks = []
    for value in values:
        name, _, size = value.partition(" ")
        if size.strip().isdigit() and int(size) > 0:
            disks.append(Disk(name=name, size_gib=round(int(size) / _GIB, 1)))
    return disks


def _gpus(fields: dict[str, list[str]]) -> tuple[list[GpuGroup], Literal["nvidia-smi", "lspci", "none"]]:
    source = (fields.get("gpu_source") or ["none"])[0]
    if source == "nvidia-smi":
        return parse_nvidia_smi(fields.get("gpu_smi", [])), "nvidia-smi"
    if source == "lspci":
        return parse_lspci(fields.get("gpu_pci", [])), "lspci"
    return [], "none"


def parse_probe_output(text: str) -> HostFacts:
    fields = _fields(text)
    if fields.get("end") != ["1"] or "probe_version" not in fields:
        raise SSHError(f"主机探测输出不完整或无法识别 (probe output truncated or malformed): {text[-300:]!r}")

    def one(key: str) -> str:
        return (fields.get(key) or [""])[0]

    gpus, source = _gpus(fields)
    swap_kib = _int(fields, "swap_total_kib")
    return HostFacts(
        os_id=one("os_id"),
        os_version=one("os_version"),
        os_name=one("os_name"),
        hostname=one("hostname"),
        kernel=one("kernel"),
        arch=one("arch"),
        cpu_model=one("cpu_model"),
        cpu_cores=_int(fields, "cpu_cores"),
        memory_mib=_int(fields, "mem_total_kib") // 1024,
        swap_on=swap_kib > 0,
        swap_mib=swap_kib // 1024,
        disks=_disks(fields.get("disk", [])),
        gpus=gpus,
        gpu_source=source,
        kubelet_installed=bool(one("kubelet_path")),
        kubelet_running=one("kubelet_state") == "active",
    )
