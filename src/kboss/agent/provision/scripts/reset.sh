# shellcheck shell=bash
# Step reset: undo kubeadm init/join so the machine can be provisioned again or leave the site:
# `kubeadm reset --force`, the CNI configuration and flannel's interfaces, root's kubeconfig, then a
# containerd restart. Installed packages, containerd's configuration and kernel settings stay.
# Reads: KBOSS_CRI_SOCKET.
set -euo pipefail

LINKS=(cni0 flannel.1)

has_link() {
    ip link show "$1" >/dev/null 2>&1
}

needs_reset() {
    local link
    if [ -e /etc/kubernetes/kubelet.conf ] || [ -e /etc/kubernetes/admin.conf ] ||
        [ -n "$(ls -A /etc/kubernetes/manifests 2>/dev/null)" ] || [ -e /etc/cni/net.d ] ||
        [ -e /root/.kube/config ] || [ -e "${HOME:-/root}/.kube/config" ]; then
        return 0
    fi
    for link in "${LINKS[@]}"; do
        if has_link "$link"; then
            return 0
        fi
    done
    return 1
}

main() {
    local link
    take_lock
    if ! needs_reset; then
        note "nothing to reset: no kubeadm, CNI or kubeconfig state on this machine"
        finish
        return 0
    fi
    if command -v kubeadm >/dev/null 2>&1; then
        kubeadm reset --force --cri-socket "$KBOSS_CRI_SOCKET"
    fi
    rm -rf /etc/cni/net.d
    rm -f /root/.kube/config "${HOME:-/root}/.kube/config"
    for link in "${LINKS[@]}"; do
        if has_link "$link"; then
            ip link delete "$link"
        fi
    done
    if service_running containerd; then
        systemctl restart containerd
    fi
    mark_changed
    if needs_reset; then
        die "kubeadm, CNI or kubeconfig state is still present after the reset"
    fi
    finish
}

main "$@" </dev/null
