# shellcheck shell=bash
# Step gpu_device_plugin: NVIDIA's device plugin DaemonSet runs in the cluster, so that GPU nodes
# advertise nvidia.com/gpu. Applied when this machine has an NVIDIA GPU, or when asked for the sake
# of GPU workers (KBOSS_DEVICE_PLUGIN=1); on nodes without GPUs the plugin idles.
# Reads: KBOSS_GPU (auto|on|off), KBOSS_DEVICE_PLUGIN (0|1), KBOSS_INSTALL_MODE, KBOSS_BUNDLE,
#        KBOSS_DEVICE_PLUGIN_URL.
set -euo pipefail

main() {
    take_lock
    if [ "$KBOSS_GPU" = off ]; then
        skip "gpu=off"
    fi
    if [ "$KBOSS_DEVICE_PLUGIN" != 1 ] && ! nvidia_gpu_present; then
        skip "no NVIDIA GPU on this machine (with_device_plugin applies it for GPU workers)"
    fi
    api_answers || die "the API server does not answer (kubeadm_init first)"
    ensure_daemonset kube-system nvidia-device-plugin-daemonset nvidia-device-plugin.yaml "$KBOSS_DEVICE_PLUGIN_URL"
    finish
}

main "$@" </dev/null
