# shellcheck shell=bash
# Step gpu_runtime: on a machine with an NVIDIA GPU, the NVIDIA container toolkit is installed and
# nvidia is containerd's default runtime, so that containers see the GPUs. Skipped without a GPU.
# kboss does not install the NVIDIA driver: a GPU whose driver does not answer is an error.
# Reads: KBOSS_GPU (auto|on|off), KBOSS_INSTALL_MODE, KBOSS_BUNDLE.
set -euo pipefail

KEYRING=/etc/apt/keyrings/nvidia-container-toolkit-keyring.gpg
SOURCES=/etc/apt/sources.list.d/nvidia-container-toolkit.list
NVIDIA_REPO=https://nvidia.github.io/libnvidia-container

add_repository() {
    # The list is written here rather than downloaded and trusted; apt expands $(ARCH) itself.
    local line="deb [signed-by=$KEYRING] $NVIDIA_REPO/stable/deb/\$(ARCH) /"
    if [ ! -s "$KEYRING" ] || [ "$(cat "$SOURCES" 2>/dev/null)" != "$line" ]; then
        install -d -m 0755 /etc/apt/keyrings
        curl -fsSL --retry 3 "$NVIDIA_REPO/gpgkey" | gpg --batch --yes --dearmor -o "$KEYRING"
        write_file "$SOURCES" "$line"$'\n'
        note "added the NVIDIA container toolkit package repository"
    fi
}

install_toolkit() {
    if pkg_installed nvidia-container-toolkit; then
        note "NVIDIA container toolkit already installed"
        return 0
    fi
    if [ "$KBOSS_INSTALL_MODE" = offline ]; then
        install_bundle_debs nvidia
    else
        add_repository
        apt_get update
        apt_get install -y nvidia-container-toolkit
    fi
    mark_changed
    pkg_installed nvidia-container-toolkit || die "nvidia-container-toolkit is not installed after installing it"
}

runtime_configured() {
    grep -rqs --include='*.toml' 'default_runtime_name = "nvidia"' /etc/containerd
}

configure_runtime() {
    if runtime_configured; then
        note "containerd already runs containers with the nvidia runtime"
        return 0
    fi
    nvidia-ctk runtime configure --runtime=containerd --set-as-default
    systemctl restart containerd
    note "nvidia is now containerd's default runtime"
    mark_changed
    runtime_configured || die "containerd's configuration lacks the nvidia default runtime after nvidia-ctk"
}

main() {
    take_lock
    case "$KBOSS_GPU" in
    off) skip "gpu=off" ;;
    on) nvidia_gpu_present || die "gpu=on but no NVIDIA GPU was found (nvidia-smi -L, lspci)" ;;
    *) nvidia_gpu_present || skip "no NVIDIA GPU" ;;
    esac
    nvidia-smi -L >/dev/null 2>&1 ||
        die "an NVIDIA GPU is present but nvidia-smi fails: install the NVIDIA driver first (kboss does not install drivers), or set gpu=off"
    install_toolkit
    configure_runtime
    wait_until 30 service_running containerd || die "containerd is not running after enabling the nvidia runtime"
    finish
}

main "$@" </dev/null
