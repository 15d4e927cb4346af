"""Offline bundles: a directory of packages, images and manifests copied to a machine before provisioning.

Layout (the `bundle` parameter names the directory on the machine):

    debs/containerd/*.deb     containerd and its dependencies
    debs/kubernetes/*.deb     kubelet, kubeadm, kubectl, kubernetes-cni, cri-tools, conntrack, ...
    debs/nvidia/*.deb         nvidia-container-toolkit and its libraries (GPU machines only)
    images/*.tar              `ctr images import` archives: control-plane images, pause, flannel, device plugin
    manifests/kube-flannel.yaml
    manifests/nvidia-device-plugin.yaml

Uploading skips files whose SHA-256 already matches on the machine, so a re-run after an interrupted
copy only sends what is missing.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from kboss.agent.provision.params import remote_path
from kboss.errors import InvalidParameter
from kboss.ssh import SshClient

_SAFE_NAME = re.compile(r"[A-Za-z0-9._+~-]+")
_SUM_LINE = re.compile(r"([0-9a-f]{64}) [ *](.+)")


@dataclass
class BundleUpload:
    uploaded: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _bundle_files(local_dir: Path) -> list[str]:
    """Relative POSIX paths of the bundle's files; names a shell or awk could misread are refused."""
    if not local_dir.is_dir():
        raise InvalidParameter("bundle", f"本地目录不存在: {local_dir}")
    names = []
    for path in sorted(p for p in local_dir.rglob("*") if p.is_file()):
        relative = path.relative_to(local_dir).as_posix()
        if not all(_SAFE_NAME.fullmatch(part) for part in relative.split("/")):
            raise InvalidParameter("bundle", f"文件名含有不允许的字符: {relative[:80]!r}")
        names.append(relative)
    return names


async def _remote_sums(ssh: SshClient, paths: list[str]) -> dict[str, str]:
    # Missing files make sha256sum exit non-zero; the lines it did print are still right.
    result = await ssh.run(["sha256sum", "--", *paths], sudo=True, name="sha256sum bundle files")
    sums = {}
    for line in result.stdout.splitlines():
        match = _SUM_LINE.fullmatch(line)
        if match:
            sums[match.group(2)] = match.group(1)
    return sums


async def upload_bundle(ssh: SshClient, local_dir: os.PathLike[str] | str, remote_dir: str) -> BundleUpload:
    """Copy the bundle at `local_dir` (on this machine) to `remote_dir` on the machine, as root."""
    root = remote_path(remote_dir, "bundle")
    local = Path(local_dir)
    names = _bundle_files(local)
    targets = {name: f"{root}/{name}" for name in names}
    existing = await _remote_sums(ssh, list(targets.values())) if names else {}
    directories = sorted({root, *(target.rsplit("/", 1)[0] for target in targets.values())})
    await ssh.run(["mkdir", "-p", "--", *directories], sudo=True, check=True, name="mkdir bundle directories")
    report = BundleUpload()
    for name, target in targets.items():
        if existing.get(target) == await asyncio.to_thread(_sha256, local / name):
            report.unchanged.append(name)
            continue
        await ssh.upload(local / name, target, mode=0o644)
        report.uploaded.append(name)
    return report
