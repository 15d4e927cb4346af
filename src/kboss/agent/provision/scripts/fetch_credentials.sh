# shellcheck shell=bash
# Step fetch_credentials: a join command for workers and the admin kubeconfig. Both are secrets:
# printed base64-encoded on `kboss-secret:` lines, which the runner takes out of the output. A fresh
# bootstrap token is issued on each run (tokens are short-lived by design); nothing else changes.
# Reads: KBOSS_TOKEN_TTL (e.g. 24h0m0s).
set -euo pipefail

ADMIN_CONF=/etc/kubernetes/admin.conf

main() {
    local join
    [ -r "$ADMIN_CONF" ] || die "$ADMIN_CONF is missing (kubeadm_init first)"
    api_answers || die "the API server does not answer"
    join=$(kubeadm token create --print-join-command --ttl "$KBOSS_TOKEN_TTL") || die "kubeadm token create failed"
    note "issued a bootstrap token valid for $KBOSS_TOKEN_TTL"
    printf 'kboss-secret: join_command %s\n' "$(printf '%s' "$join" | base64 -w 0)"
    printf 'kboss-secret: kubeconfig %s\n' "$(base64 -w 0 <"$ADMIN_CONF")"
    finish
}

main "$@" </dev/null
