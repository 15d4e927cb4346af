# shellcheck shell=bash
# Step network_plugin: flannel (pod network 10.244.0.0/16, flannel's default) is applied to the
# cluster; nothing is done when its DaemonSet exists. The manifest comes from the offline bundle or is
# fetched by the machine: kboss ships no third-party manifest.
# Reads: KBOSS_INSTALL_MODE, KBOSS_BUNDLE, KBOSS_FLANNEL_URL.
set -euo pipefail

main() {
    take_lock
    api_answers || die "the API server does not answer (kubeadm_init first)"
    ensure_daemonset kube-flannel kube-flannel-ds kube-flannel.yaml "$KBOSS_FLANNEL_URL"
    finish
}

main "$@" </dev/null
