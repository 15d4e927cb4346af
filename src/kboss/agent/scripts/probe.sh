#!/bin/sh
# kboss host probe. Prints facts about this machine as `key=value` lines (one fact per line, the
# value is the rest of the line) for kboss.agent.probe to parse. Best effort by design: a missing
# tool leaves one fact empty instead of failing the probe, so there is no `set -e`. The last line
# is `end=1`, which lets the parser tell a complete answer from a cut-off one.
# Runs unprivileged under POSIX sh (dash on Debian/Ubuntu); must pass shellcheck. It starts few
# processes on purpose (shell builtins, one sed per file): a site probes many machines at once.

LC_ALL=C
export LC_ALL

emit() {
    # Callers pass single-line values (first match, first line) so one fact stays one line.
    printf '%s=%s\n' "$1" "$2"
}

have() {
    command -v "$1" >/dev/null 2>&1
}

probe_os() {
    # Parsed, not sourced: the probe never executes text from the machine it inspects.
    if [ -r /etc/os-release ]; then
        sed -n -e 's/^ID=/os_id=/p' -e 's/^VERSION_ID=/os_version=/p' -e 's/^PRETTY_NAME=/os_name=/p' \
            /etc/os-release | tr -d "\"'"
    fi
    read -r name </proc/sys/kernel/hostname && emit hostname "$name"
    read -r release </proc/sys/kernel/osrelease && emit kernel "$release"
    emit arch "$(uname -m)"
}

probe_cpu_memory() {
    model=$(sed -n '/^model name/{s/^model name[[:space:]]*:[[:space:]]*//p;q;}' /proc/cpuinfo)
    if [ -z "$model" ] && have lscpu; then
        model=$(lscpu | sed -n '/^Model name:/{s/^Model name:[[:space:]]*//p;q;}')
    fi
    emit cpu_model "$model"
    emit cpu_cores "$(getconf _NPROCESSORS_ONLN 2>/dev/null || grep -c '^processor' /proc/cpuinfo)"
    sed -n -e 's/^MemTotal:[[:space:]]*\([0-9][0-9]*\).*/mem_total_kib=\1/p' \
        -e 's/^SwapTotal:[[:space:]]*\([0-9][0-9]*\).*/swap_total_kib=\1/p' /proc/meminfo
}

probe_disks() {
    # Whole disks only (no partitions, loop devices, RAM disks or device-mapper volumes), size in bytes.
    if have lsblk; then
        lsblk -d -b -n -o NAME,SIZE,TYPE 2>/dev/null | while read -r name size type; do
            case $name in zram* | loop* | ram*) continue ;; esac
            if [ "$type" = disk ] && [ "${size:-0}" -gt 0 ]; then emit disk "$name $size"; fi
        done
        return 0
    fi
    for dev in /sys/block/*; do
        name=${dev##*/}
        case $name in loop* | ram* | dm-* | sr* | zram* | md*) continue ;; esac
        read -r sectors <"$dev/size" || continue
        if [ "$sectors" -gt 0 ]; then emit disk "$name $((sectors * 512))"; fi
    done
}

probe_gpus() {
    # nvidia-smi knows model and memory; without a driver, lspci still shows that the cards exist.
    if have nvidia-smi && smi=$(nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null); then
        emit gpu_source nvidia-smi
        printf '%s\n' "$smi" | while IFS= read -r line; do
            if [ -n "$line" ]; then emit gpu_smi "$line"; fi
        done
    elif have lspci; then
        emit gpu_source lspci
        lspci 2>/dev/null | grep -i 'nvidia' | grep -i -E 'vga|3d controller|display controller' |
            while IFS= read -r line; do emit gpu_pci "$line"; done
    else
        emit gpu_source none
    fi
}

probe_kubelet() {
    emit kubelet_path "$(command -v kubelet 2>/dev/null)"
    state=unknown
    if [ -d /run/systemd/system ] && have systemctl; then
        state=$(systemctl is-active kubelet 2>/dev/null)
    fi
    # Without systemd (or when it does not know the unit) look for the process itself.
    if [ "$state" != active ] && have pgrep; then
        if pgrep -x kubelet >/dev/null 2>&1; then
            state=active
        elif [ "$state" = unknown ]; then
            state=inactive
        fi
    fi
    emit kubelet_state "${state:-unknown}"
}

emit probe_version 1
probe_os
probe_cpu_memory
probe_disks
probe_gpus
probe_kubelet
emit end 1
