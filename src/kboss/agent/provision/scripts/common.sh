#!/usr/bin/env bash
# kboss provisioning: functions shared by every step script.
#
# kboss sends this text followed by one step's text to `bash -s` on the machine (as root), with the
# step's parameters as KBOSS_* environment variables set by `env` on the command line: values never
# become script text. Each step defines `main` and calls it last, with stdin from /dev/null, so that
# no command inside (apt-get, dpkg, kubeadm) can swallow the rest of the script from the pipe.
#
# Contract with kboss.agent.provision.runner:
#   - `kboss: ...`             progress notes
#   - `kboss-error: ...`       the reason of a failure (also on a non-zero exit)
#   - `kboss-secret: K B64`    a secret result (base64), captured by the runner, never shown or logged
#   - `kboss-step: changed | unchanged | skipped <reason>` as the very last line
set -euo pipefail
shopt -s inherit_errexit
export LC_ALL=C DEBIAN_FRONTEND=noninteractive
umask 022

KBOSS_STEP_CHANGED=0
KBOSS_LOCK=/var/lib/kboss/provision.lock

note() {
    printf 'kboss: %s\n' "$*"
}

die() {
    printf 'kboss-error: %s\n' "$*" >&2
    exit 1
}

mark_changed() {
    KBOSS_STEP_CHANGED=1
}

finish() {
    if [ "$KBOSS_STEP_CHANGED" = 1 ]; then
        echo 'kboss-step: changed'
    else
        echo 'kboss-step: unchanged'
    fi
}

skip() {
    printf 'kboss-step: skipped %s\n' "$*"
    exit 0
}

take_lock() {
    # One kboss step at a time per machine, whichever agent or replica sent it: two concurrent
    # apt/dpkg/kubeadm runs would fight over locks and leave a half-configured node.
    mkdir -p "${KBOSS_LOCK%/*}"
    exec 9>"$KBOSS_LOCK"
    flock -w 30 9 || die "another kboss provisioning step is running on this machine"
}

pkg_installed() {
    # dpkg's own status field, not `command -v`: a binary elsewhere in PATH is not a managed package.
    local status
    # shellcheck disable=SC2016  # ${db:Status-Status} is a dpkg-query format, not a shell expansion
    status=$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null) || return 1
    [ "$status" = installed ]
}

all_installed() {
    local pkg
    for pkg in "$@"; do
        pkg_installed "$pkg" || return 1
    done
}

apt_get() {
    # Fresh Ubuntu machines run unattended-upgrades at boot: wait for the dpkg lock instead of failing.
    apt-get -q -o DPkg::Lock::Timeout=600 "$@"
}

install_bundle_debs() {
    # Offline: every .deb of one bundle group at once, so dpkg resolves dependencies inside the set.
    local dir="$KBOSS_BUNDLE/debs/$1"
    local debs=("$dir"/*.deb)
    [ -e "${debs[0]}" ] || die "offline bundle has no packages in $dir"
    note "installing ${#debs[@]} packages from $dir"
    dpkg -i "${debs[@]}"
}

write_file() {
    # Atomic replace (temporary file in the same directory, then rename): readers never see half a file.
    local path=$1 content=$2 mode=${3:-0644} tmp
    mkdir -p "${path%/*}"
    tmp=$(mktemp "${path%/*}/.kboss.XXXXXX")
    printf '%s' "$content" >"$tmp"
    chmod "$mode" "$tmp"
    mv -f "$tmp" "$path"
}

ensure_file() {
    # Write only when the content differs; a rewrite with equal content would not be a change.
    local path=$1 content=$2
    if [ -f "$path" ] && [ "$(cat "$path")" = "${content%$'\n'}" ]; then
        return 0
    fi
    write_file "$path" "$content" "${3:-0644}"
    note "wrote $path"
    mark_changed
}

node_name() {
    # kubeadm's default node name: the host name, lower-cased.
    hostname | tr '[:upper:]' '[:lower:]'
}

wait_until() {
    # wait_until SECONDS command...: poll every 2 s; the exit code says whether the command succeeded in time.
    local deadline=$((SECONDS + $1))
    shift
    until "$@"; do
        [ "$SECONDS" -lt "$deadline" ] || return 1
        sleep 2
    done
}

service_running() {
    systemctl is-active --quiet "$1"
}

ensure_service() {
    # enabled at boot and running now
    if ! systemctl is-enabled --quiet "$1" || ! service_running "$1"; then
        systemctl enable --now "$1"
        note "enabled and started $1"
        mark_changed
    fi
}

ensure_enabled() {
    # enabled at boot; for the kubelet, which restarts in a loop until kubeadm init/join configures it
    if ! systemctl is-enabled --quiet "$1"; then
        systemctl enable --now "$1"
        note "enabled $1"
        mark_changed
    fi
}

kubernetes_version() {
    # The exact version asked for, else the one of the installed kubeadm: never a lookup on the
    # internet (kubeadm's default), which fails offline.
    if [ -n "$KBOSS_K8S_PATCH" ]; then
        echo "v$KBOSS_K8S_PATCH"
    else
        kubeadm version -o short
    fi
}

kube() {
    kubectl --kubeconfig /etc/kubernetes/admin.conf "$@"
}

api_answers() {
    kube get --raw=/readyz >/dev/null 2>&1
}

nvidia_gpu_present() {
    # nvidia-smi knows when a driver is loaded; lspci sees cards without one. Output captured first:
    # `lspci | grep -q` would kill lspci with SIGPIPE, which pipefail reports as a failure.
    local pci=""
    if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
        return 0
    fi
    if command -v lspci >/dev/null 2>&1; then
        pci=$(lspci 2>/dev/null || true)
    fi
    grep -i nvidia <<<"$pci" | grep -Eqi 'vga|3d controller|display controller'
}

manifest_text() {
    # manifest_text BUNDLE_FILE URL: the manifest from the offline bundle, or fetched by this machine.
    # kboss ships no third-party manifest; it is read whole before anything is applied.
    if [ "$KBOSS_INSTALL_MODE" = offline ]; then
        [ -f "$KBOSS_BUNDLE/manifests/$1" ] || die "offline bundle lacks manifests/$1"
        cat "$KBOSS_BUNDLE/manifests/$1"
    else
        curl -fsSL --retry 3 "$2" || die "could not download $2"
    fi
}

ensure_daemonset() {
    # ensure_daemonset NAMESPACE NAME BUNDLE_FILE URL: apply the manifest unless its DaemonSet exists.
    local namespace=$1 name=$2 manifest
    if kube get -n "$namespace" "daemonset/$name" >/dev/null 2>&1; then
        note "daemonset $namespace/$name already exists"
        return 0
    fi
    manifest=$(manifest_text "$3" "$4")
    printf '%s\n' "$manifest" | kube apply -f -
    mark_changed
    kube get -n "$namespace" "daemonset/$name" >/dev/null 2>&1 ||
        die "daemonset $namespace/$name missing after applying $3"
}
