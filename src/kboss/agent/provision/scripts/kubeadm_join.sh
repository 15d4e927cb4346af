# shellcheck shell=bash
# Step kubeadm_join: this machine is a node of the cluster. Nothing is done when
# /etc/kubernetes/kubelet.conf exists. The join command was parsed and validated by kboss; its parts
# arrive one per variable and are passed to kubeadm as separate arguments, never re-read as shell text.
# Reads: KBOSS_JOIN_ENDPOINT, KBOSS_JOIN_TOKEN, KBOSS_JOIN_CA_HASH, KBOSS_JOIN_CONTROL_PLANE (0|1),
#        KBOSS_JOIN_CERT_KEY, KBOSS_CRI_SOCKET.
set -euo pipefail

main() {
    local args
    take_lock
    if [ -f /etc/kubernetes/kubelet.conf ]; then
        note "already a node of a cluster (/etc/kubernetes/kubelet.conf exists)"
        finish
        return 0
    fi
    args=(join "$KBOSS_JOIN_ENDPOINT" --token "$KBOSS_JOIN_TOKEN"
        --discovery-token-ca-cert-hash "$KBOSS_JOIN_CA_HASH"
        --node-name "$(node_name)" --cri-socket "$KBOSS_CRI_SOCKET")
    if [ "$KBOSS_JOIN_CONTROL_PLANE" = 1 ]; then
        args+=(--control-plane)
    fi
    if [ -n "$KBOSS_JOIN_CERT_KEY" ]; then
        args+=(--certificate-key "$KBOSS_JOIN_CERT_KEY")
    fi
    kubeadm "${args[@]}"
    mark_changed
    [ -f /etc/kubernetes/kubelet.conf ] || die "kubeadm join finished but /etc/kubernetes/kubelet.conf is missing"
    wait_until 60 service_running kubelet || die "the kubelet is not running after kubeadm join"
    finish
}

main "$@" </dev/null
