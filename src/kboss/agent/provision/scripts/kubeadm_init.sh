# shellcheck shell=bash
# Step kubeadm_init: this machine is a control plane whose API answers. Nothing is done when
# /etc/kubernetes/admin.conf exists and the API answers; leftovers of a failed or other kubeadm run
# are refused with advice instead of being overwritten.
# Reads: KBOSS_ADVERTISE_ADDRESS, KBOSS_ADVERTISE_STRICT (0|1), KBOSS_POD_CIDR, KBOSS_K8S_PATCH,
#        KBOSS_IMAGE_REPOSITORY, KBOSS_CRI_SOCKET.
set -euo pipefail

ADMIN_CONF=/etc/kubernetes/admin.conf
ARGS=()

address_is_local() {
    [ -n "$(ip -o addr show to "$1" 2>/dev/null)" ]
}

init_args() {
    local address=$KBOSS_ADVERTISE_ADDRESS
    ARGS=(init --pod-network-cidr="$KBOSS_POD_CIDR" --kubernetes-version="$(kubernetes_version)"
        --node-name="$(node_name)" --cri-socket="$KBOSS_CRI_SOCKET")
    if [ -n "$address" ] && address_is_local "$address"; then
        ARGS+=(--apiserver-advertise-address="$address")
    elif [ -n "$address" ] && [ "$KBOSS_ADVERTISE_STRICT" = 1 ]; then
        die "advertise_address $address is not an address of this machine"
    elif [ -n "$address" ]; then
        # Reached through NAT or a forwarded port: let kubeadm take the default route's address.
        note "$address is not an address of this machine; kubeadm picks the default route's address"
    fi
    if [ -n "$KBOSS_IMAGE_REPOSITORY" ]; then
        ARGS+=(--image-repository="$KBOSS_IMAGE_REPOSITORY")
    fi
}

main() {
    take_lock
    if [ -f "$ADMIN_CONF" ]; then
        if wait_until 60 api_answers; then
            note "control plane already initialised and its API answers"
            finish
            return 0
        fi
        die "$ADMIN_CONF exists but the API server does not answer: check the kubelet (journalctl -u kubelet), or reset the node to start over"
    fi
    if [ -e /etc/kubernetes/kubelet.conf ] || [ -e /etc/kubernetes/manifests/kube-apiserver.yaml ]; then
        die "/etc/kubernetes holds another kubeadm run's files (a joined node, or an init that failed halfway): reset the node first"
    fi
    init_args
    kubeadm "${ARGS[@]}"
    mark_changed
    wait_until 120 api_answers || die "kubeadm init finished but the API server does not answer"
    finish
}

main "$@" </dev/null
