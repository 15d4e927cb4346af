# shellcheck shell=bash
# Step container_runtime: containerd installed, configured for kubeadm (systemd cgroup driver, the
# sandbox image kubeadm expects), enabled and running.
# Reads: KBOSS_INSTALL_MODE (online|offline), KBOSS_BUNDLE, KBOSS_SANDBOX_IMAGE.
set -euo pipefail

CONFIG=/etc/containerd/config.toml

containerd_installed() {
    # Docker's repository names the package containerd.io; either is fine.
    pkg_installed containerd || pkg_installed containerd.io
}

install_containerd() {
    if containerd_installed; then
        note "containerd already installed"
        return 0
    fi
    if [ "$KBOSS_INSTALL_MODE" = offline ]; then
        install_bundle_debs containerd
    else
        apt_get update
        apt_get install -y containerd
    fi
    mark_changed
    containerd_installed || die "containerd is not installed after installing it"
}

config_ok() {
    [ -f "$CONFIG" ] &&
        grep -Eq '^[[:space:]]*SystemdCgroup[[:space:]]*=[[:space:]]*true' "$CONFIG" &&
        grep -Fq "sandbox_image = \"$KBOSS_SANDBOX_IMAGE\"" "$CONFIG"
}

patched_config() {
    # The machine's own config when it is a full CRI config (keeps an operator's registry mirrors),
    # else containerd's defaults: Docker's containerd.io ships a config with the CRI plugin disabled.
    local base
    if [ -f "$CONFIG" ] && grep -q 'SystemdCgroup' "$CONFIG" && ! grep -Eq '^disabled_plugins.*"cri"' "$CONFIG"; then
        base=$(cat "$CONFIG")
    else
        base=$(containerd config default)
    fi
    # The image comes from the environment, not from the program text: awk -v would unescape it.
    printf '%s\n' "$base" | awk '
        /^[[:space:]]*SystemdCgroup[[:space:]]*=/ { sub(/=.*/, "= true") }
        /^[[:space:]]*sandbox_image[[:space:]]*=/ { sub(/=.*/, "= \"" ENVIRON["KBOSS_SANDBOX_IMAGE"] "\"") }
        { print }'
}

configure() {
    local new
    if config_ok; then
        note "$CONFIG already uses systemd cgroups and $KBOSS_SANDBOX_IMAGE"
        return 0
    fi
    new=$(patched_config)
    if [ -f "$CONFIG" ]; then
        cp -p "$CONFIG" "$CONFIG.kboss-bak"
    fi
    write_file "$CONFIG" "$new"$'\n'
    note "wrote $CONFIG (SystemdCgroup = true, sandbox image $KBOSS_SANDBOX_IMAGE)"
    mark_changed
    config_ok || die "$CONFIG still lacks SystemdCgroup = true or sandbox_image after rewriting it (containerd 2.x?)"
    if service_running containerd; then
        systemctl restart containerd
    fi
}

main() {
    take_lock
    install_containerd
    configure
    ensure_service containerd
    wait_until 30 service_running containerd || die "containerd is not running"
    finish
}

main "$@" </dev/null
