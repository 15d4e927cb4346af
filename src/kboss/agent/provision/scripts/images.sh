# shellcheck shell=bash
# Step images: the images the node needs are in containerd's k8s.io namespace before kubeadm runs.
# Control plane: every image of `kubeadm config images list`; worker: kube-proxy and pause only (the
# kubelet pulls the rest as pods land). Plus the sandbox image containerd was configured with.
# Offline: `ctr images import` of each images/*.tar of the bundle; online: pulled by the machine.
# Reads: KBOSS_ROLE, KBOSS_INSTALL_MODE, KBOSS_BUNDLE, KBOSS_K8S_PATCH, KBOSS_IMAGE_REPOSITORY,
#        KBOSS_SANDBOX_IMAGE, KBOSS_CRI_SOCKET.
set -euo pipefail

IMAGE_ARGS=()
REQUIRED=""

required_images() {
    local list
    IMAGE_ARGS=(--kubernetes-version "$(kubernetes_version)")
    if [ -n "$KBOSS_IMAGE_REPOSITORY" ]; then
        IMAGE_ARGS+=(--image-repository "$KBOSS_IMAGE_REPOSITORY")
    fi
    list=$(kubeadm config images list "${IMAGE_ARGS[@]}")
    if [ "$KBOSS_ROLE" = worker ]; then
        list=$(grep -E '/(kube-proxy|pause):' <<<"$list" || true)
    fi
    REQUIRED=$(printf '%s\n%s\n' "$list" "$KBOSS_SANDBOX_IMAGE" | sed '/^$/d' | sort -u)
}

missing_images() {
    local present
    present=$(ctr -n k8s.io images ls -q)
    grep -Fxv -f <(printf '%s\n' "$present") <<<"$REQUIRED" || true
}

import_bundle() {
    local tars=("$KBOSS_BUNDLE"/images/*.tar) tar
    [ -e "${tars[0]}" ] || die "offline bundle has no images in $KBOSS_BUNDLE/images/*.tar"
    for tar in "${tars[@]}"; do
        ctr -n k8s.io images import "$tar"
    done
}

pull_online() {
    local image
    if [ "$KBOSS_ROLE" = master ]; then
        kubeadm config images pull "${IMAGE_ARGS[@]}" --cri-socket "$KBOSS_CRI_SOCKET"
    fi
    # What kubeadm does not know about (the sandbox image when it differs, a worker's images).
    for image in $(missing_images); do
        ctr -n k8s.io images pull "$image" >/dev/null
        note "pulled $image"
    done
}

main() {
    local missing
    take_lock
    required_images
    missing=$(missing_images)
    if [ -z "$missing" ]; then
        note "all $(wc -l <<<"$REQUIRED") required images are present"
        finish
        return 0
    fi
    note "missing images: $(tr '\n' ' ' <<<"$missing")"
    if [ "$KBOSS_INSTALL_MODE" = offline ]; then
        import_bundle
    else
        pull_online
    fi
    mark_changed
    missing=$(missing_images)
    [ -z "$missing" ] || die "images still missing: $(tr '\n' ' ' <<<"$missing")"
    finish
}

main "$@" </dev/null
