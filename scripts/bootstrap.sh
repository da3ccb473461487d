#!/usr/bin/env bash
# Installs everything the demo and the tests need on a fresh Debian machine, then builds.
# Idempotent: a second run only re-checks. Needs root or passwordless sudo for apt.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
for pair in sshd:openssh-server sudo:sudo hexdump:bsdextrautils unshare:util-linux script:bsdutils openssl:openssl zsh:zsh; do
  cmd=${pair%%:*} pkg=${pair#*:}
  command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/sbin/$cmd" ] || need+=("$pkg")
done
# kubectl is used as a real client in end-to-end tests; Debian ships it as kubernetes-client.
command -v kubectl >/dev/null 2>&1 || need+=(kubernetes-client)

if [ ${#need[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo -n"
  echo "bootstrap: installing ${need[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  # The Debian package enables an sshd on the system; the sandbox runs its own.
  $SUDO systemctl disable --now ssh >/dev/null 2>&1 || $SUDO service ssh stop >/dev/null 2>&1 || true
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
npm run build --silent

# The sandbox runs kube-apiserver, kube-controller-manager and etcd built from their release source
# (test/sandbox/kube/). Built once per release and cached (~/.cache/kubectl-encryption/sandbox);
# a cold build takes about 20 minutes on 2 cores, a cached one is found in a second.
command -v go >/dev/null 2>&1 || { echo "bootstrap: Go 1.26 or newer is needed to build the sandbox's Kubernetes (go not found)" >&2; exit 1; }
npm run --silent sandbox -- --build
