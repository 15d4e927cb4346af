# shellcheck shell=bash
# Step wait_ready: the control-plane node reports Ready. Changes nothing; judged by kubectl's exit
# code only, never by its text.
# Reads: KBOSS_WAIT_TIMEOUT (seconds).
set -euo pipefail

main() {
    local node
    node=$(node_name)
    if kube wait --for=condition=Ready "node/$node" --timeout="${KBOSS_WAIT_TIMEOUT}s"; then
        note "node $node is Ready"
    else
        die "node $node is not Ready after ${KBOSS_WAIT_TIMEOUT}s: are the network plugin's pods running? (journalctl -u kubelet)"
    fi
    finish
}

main "$@" </dev/null
