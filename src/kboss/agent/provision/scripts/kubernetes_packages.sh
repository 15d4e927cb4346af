# shellcheck shell=bash
# Step kubernetes_packages: kubelet, kubeadm and kubectl of the requested minor version installed,
# held (no unattended upgrade of a cluster component), kubelet enabled.
# Reads: KBOSS_INSTALL_MODE, KBOSS_BUNDLE, KBOSS_K8S_MINOR (v1.30), KBOSS_K8S_PATCH (1.30.4 or empty).
set -euo pipefail

PACKAGES=(kubelet kubeadm kubectl)
KEYRING=/etc/apt/keyrings/kubernetes-apt-keyring.gpg
SOURCES=/etc/apt/sources.list.d/kubernetes.list

add_repository() {
    local base="https://pkgs.k8s.io/core:/stable:/$KBOSS_K8S_MINOR/deb/"
    local line="deb [signed-by=$KEYRING] $base /"
    if [ ! -s "$KEYRING" ] || [ "$(cat "$SOURCES" 2>/dev/null)" != "$line" ]; then
        install -d -m 0755 /etc/apt/keyrings
        curl -fsSL --retry 3 "${base}Release.key" | gpg --batch --yes --dearmor -o "$KEYRING"
        write_file "$SOURCES" "$line"$'\n'
        note "added the Kubernetes $KBOSS_K8S_MINOR package repository"
    fi
}

install_online() {
    local wanted=("${PACKAGES[@]}") i
    if [ -n "$KBOSS_K8S_PATCH" ]; then
        for i in "${!wanted[@]}"; do
            wanted[i]="${wanted[i]}=$KBOSS_K8S_PATCH-*"
        done
    fi
    add_repository
    apt_get update
    apt_get install -y "${wanted[@]}"
}

check_version() {
    local have
    have=$(kubeadm version -o short) || die "kubeadm does not run"
    case "$have" in
    "$KBOSS_K8S_MINOR".*) ;;
    *) die "kubeadm $have is installed but $KBOSS_K8S_MINOR was requested; provisioning does not upgrade clusters" ;;
    esac
    if [ -n "$KBOSS_K8S_PATCH" ] && [ "$have" != "v$KBOSS_K8S_PATCH" ]; then
        die "kubeadm $have is installed but v$KBOSS_K8S_PATCH was requested"
    fi
}

hold_packages() {
    local held pkg
    held=$(apt-mark showhold)
    for pkg in "${PACKAGES[@]}"; do
        if ! grep -Fxq "$pkg" <<<"$held"; then
            apt-mark hold "$pkg" >/dev/null
            note "holding $pkg at its version"
            mark_changed
        fi
    done
}

main() {
    take_lock
    if all_installed "${PACKAGES[@]}"; then
        note "kubelet, kubeadm and kubectl already installed"
    else
        if [ "$KBOSS_INSTALL_MODE" = offline ]; then
            install_bundle_debs kubernetes
        else
            install_online
        fi
        mark_changed
        all_installed "${PACKAGES[@]}" || die "kubelet, kubeadm or kubectl is not installed after installing them"
    fi
    check_version
    hold_packages
    ensure_enabled kubelet
    finish
}

main "$@" </dev/null
