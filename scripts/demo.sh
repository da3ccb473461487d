#!/usr/bin/env bash
# The README demo: the seed task "Encrypting Confidential Data at Rest", done with the plugin through
# kubectl, against the local sandbox (the real kube-apiserver, kube-controller-manager, etcd and kubectl
# built from release source; three SSH control-plane nodes; a kubelet running them as static pods).
# It starts its own sandbox in .sandbox-demo and always stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
state="$repo/.sandbox-demo"

work=$(mktemp -d "${TMPDIR:-/tmp}/kubectl-encryption-demo.XXXXXX")
chmod 700 "$work"
cleanup() {
  npm run --silent sandbox -- --down --state-dir "$state" >/dev/null 2>&1 || true
  rm -rf "$state" "$state.log"
  rm -rf "$work"
}
trap cleanup EXIT

# kubectl finds plugins on PATH by name, as a krew install would put it there.
mkdir -p "$work/bin"
ln -s "$repo/bin/run.js" "$work/bin/kubectl-encryption"
export PATH="$work/bin:$PATH"

step() { printf '\n\033[1m# %s\033[0m\n' "$*" >&2; }
show() { echo "+ $*" >&2; "$@"; }
# A check that is meant to find a problem: show its exit code instead of stopping the demo.
check() { echo "+ $*" >&2; set +e; "$@"; local code=$?; set -e; echo "  (exit code $code)" >&2; }

step "0. Start the sandbox: etcd with mutual TLS, three control-plane nodes over SSH, kube-apiserver and kube-controller-manager on each."
npm run --silent sandbox -- --detach --state-dir "$state"
# shellcheck disable=SC1091
source "$state/env"
ssh=(--ssh-config "$SANDBOX_SSH_CONFIG")
show kubectl get nodes

step "1. The seed's Secret, before encryption: etcd holds it in plaintext (k8s\\0 protobuf)."
show kubectl create secret generic secret1 -n default --from-literal=mykey=mydata
etcdctl get /registry/secrets/default/secret1 | hexdump -C | head -4

step "2. status: encryption is off on every apiserver (exit 5 is the check failing, as it should)."
check kubectl encryption status "${ssh[@]}"

step "3. enable: a new secretbox key (never printed), written 0600 to every node, manifests patched one node"
echo "   at a time with backups and a readiness wait, then the verify round trip." >&2
show kubectl encryption enable --yes "${ssh[@]}"

step "4. verify: create a Secret, read its raw bytes from etcd, check provider and key, read back, delete."
show kubectl encryption verify --hexdump "${ssh[@]}"

step "5. status --scan: the new config agrees on all nodes, but secret1 is still stored in plaintext."
check kubectl encryption status --scan "${ssh[@]}"

step "6. rewrite: the seed's get | replace, paged, concurrent and resumable; then the scan is clean."
show kubectl encryption rewrite -A "${ssh[@]}"
show kubectl encryption status --scan "${ssh[@]}"
etcdctl get /registry/secrets/default/secret1 | hexdump -C | head -4

step "7. rotate: new key second, then first, rewrite, and the old key removed (after an etcd backup)."
show kubectl encryption rotate --yes --backup-confirmed "${ssh[@]}"
show kubectl encryption status --scan "${ssh[@]}"

step "8. decrypt-all: identity first, rewrite everything, prove nothing is encrypted, take the config out."
show kubectl encryption decrypt-all --yes --remove-encryption "${ssh[@]}"
check kubectl encryption status --scan "${ssh[@]}"
show kubectl get secret secret1 -n default -o jsonpath='{.data.mykey}'
echo >&2

step "9. Done: the sandbox stops and nothing is left behind."
