# shellcheck shell=bash
# Step preflight: the machine can run a kubelet. Supported OS, valid node name, swap off now and at
# boot, kernel modules overlay and br_netfilter loaded now and at boot, bridge/forwarding sysctls.
# Reads: KBOSS_ALLOW_UNSUPPORTED_OS (0|1).
set -euo pipefail

os_field() {
    # Parsed, never sourced: kboss does not execute text it reads from the machine.
    sed -n "s/^$1=//p" /etc/os-release | tr -d "\"'" | head -n 1
}

check_os() {
    local id version
    id=$(os_field ID)
    version=$(os_field VERSION_ID)
    if [ "$id" = ubuntu ] && [ "$version" = 22.04 ]; then
        note "OS: Ubuntu 22.04"
    elif [ "${KBOSS_ALLOW_UNSUPPORTED_OS:-0}" = 1 ]; then
        note "WARNING: unsupported OS ${id:-unknown} ${version:-?}; continuing because allow_unsupported_os is set"
    else
        die "unsupported OS: ${id:-unknown} ${version:-?}. kboss provisions Ubuntu 22.04; set allow_unsupported_os to try anyway"
    fi
}

check_node_name() {
    local name
    name=$(node_name)
    if ! [[ $name =~ ^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$ ]] || [ "${#name}" -gt 63 ]; then
        die "host name '$name' is not a valid Kubernetes node name (RFC 1123, at most 63 characters)"
    fi
}

swap_active() {
    [ -n "$(tail -n +2 /proc/swaps)" ]
}

fstab_has_swap() {
    awk '!/^[[:space:]]*#/ && $3 == "swap" { found = 1 } END { exit !found }' /etc/fstab
}

disable_swap() {
    local updated
    if swap_active; then
        swapoff -a
        note "swap turned off"
        mark_changed
    fi
    swap_active && die "swap is still active after swapoff -a"
    if fstab_has_swap; then
        # Commented out, not deleted, so an operator can see and undo it. Written in place: keeps the
        # inode and permissions of a file read at every boot (and works when fstab is a bind mount).
        updated=$(awk '!/^[[:space:]]*#/ && $3 == "swap" { print "#kboss-swapoff# " $0; next } { print }' /etc/fstab)
        printf '%s\n' "$updated" >/etc/fstab
        note "swap entries commented out in /etc/fstab"
        mark_changed
    fi
    fstab_has_swap && die "/etc/fstab still mounts swap"
    return 0
}

load_modules() {
    local module
    for module in overlay br_netfilter; do
        # /sys/module lists built-in modules too, which never show in lsmod.
        if [ ! -d "/sys/module/$module" ]; then
            modprobe "$module"
            note "loaded kernel module $module"
            mark_changed
        fi
        [ -d "/sys/module/$module" ] || die "kernel module $module is not loaded after modprobe"
    done
    ensure_file /etc/modules-load.d/k8s.conf $'overlay\nbr_netfilter\n'
}

SYSCTLS=(net.bridge.bridge-nf-call-iptables net.bridge.bridge-nf-call-ip6tables net.ipv4.ip_forward)

sysctls_set() {
    local key
    for key in "${SYSCTLS[@]}"; do
        [ "$(sysctl -n "$key" 2>/dev/null)" = 1 ] || return 1
    done
}

set_sysctls() {
    local conf="" key
    for key in "${SYSCTLS[@]}"; do
        conf+="$key = 1"$'\n'
    done
    ensure_file /etc/sysctl.d/k8s.conf "$conf"
    if ! sysctls_set; then
        sysctl --system >/dev/null
        note "applied kernel parameters"
        mark_changed
    fi
    sysctls_set || die "kernel parameters ${SYSCTLS[*]} are not all 1 after sysctl --system"
}

main() {
    take_lock
    check_os
    check_node_name
    disable_swap
    load_modules
    set_sysctls
    finish
}

main "$@" </dev/null
