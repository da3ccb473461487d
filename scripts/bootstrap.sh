#!/usr/bin/env bash
# Installs everything the demo and the tests need on a fresh Debian machine, then builds.
# Idempotent: a second run only re-checks. Needs root or passwordless sudo for apt.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
for pair in sshd:openssh-server sudo:sudo hexdump:bsdextrautils unshare:util-linux script:bsdutils openssl:openssl zsh:zsh llvm-objdump:llvm jq:jq; do
  cmd=${pair%%:*} pkg=${pair#*:}
  command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/sbin/$cmd" ] || need+=("$pkg")
done
# Wine runs the Windows executable in the packaging tests (64-bit loader only, no recommends).
[ -x /usr/lib/wine/wine64 ] || command -v wine64 >/dev/null 2>&1 || need+=(wine64)
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

# Tools built from their registries, pinned, cached by version under ~/.cache/kubectl-encryption (a
# second run copies them only) and copied into .tools/bin, where the build and the tests look.
cache="${XDG_CACHE_HOME:-$HOME/.cache}/kubectl-encryption"
mkdir -p .tools/bin "$cache"
put() { cmp -s "$1" ".tools/bin/$2" || install -m 0755 "$1" ".tools/bin/$2"; }

# krew and the krew-index's manifest validator (test/tools/krew/go.mod pins them), for the packaging e2e.
command -v go >/dev/null 2>&1 || { echo "bootstrap: Go is needed to build krew (sigs.k8s.io/krew)" >&2; exit 1; }
krew_version=$(awk '$1 == "sigs.k8s.io/krew" {print $2}' test/tools/krew/go.mod)
krew_dir="$cache/krew-$krew_version-$(cat test/tools/krew/go.mod test/tools/krew/go.sum | sha256sum | cut -c1-12)"
if [ ! -x "$krew_dir/validate-krew-manifest" ]; then
  echo "bootstrap: building krew $krew_version into $krew_dir" >&2
  rm -rf "$krew_dir.tmp"
  (cd test/tools/krew && GOFLAGS=-buildvcs=false go build -trimpath -o "$krew_dir.tmp/" sigs.k8s.io/krew/cmd/krew sigs.k8s.io/krew/cmd/validate-krew-manifest)
  rm -rf "$krew_dir" && mv "$krew_dir.tmp" "$krew_dir"
fi
put "$krew_dir/krew" kubectl-krew
put "$krew_dir/validate-krew-manifest" validate-krew-manifest

# rcodesign (the apple-codesign crate) signs the macOS executables again after the blob goes in. Its
# first build costs about 10 CPU-minutes (about 6 minutes on 2 cores), once per machine; CI builds it
# too, so that CI packages and checks the macOS archives. Where crates.io cannot be reached the build
# fails: then the tests build no macOS archive and skip the macOS checks (said below), and
# `npm run package` refuses to build the macOS archives. BOOTSTRAP_RCODESIGN=0 skips the build.
RCODESIGN_VERSION=0.29.0
rcodesign_dir="$cache/rcodesign-$RCODESIGN_VERSION"
if [ ! -x "$rcodesign_dir/bin/rcodesign" ] && [ "${BOOTSTRAP_RCODESIGN:-1}" != 0 ]; then
  if command -v cargo >/dev/null 2>&1; then
    echo "bootstrap: building rcodesign $RCODESIGN_VERSION into $rcodesign_dir (about 10 CPU-minutes, once)" >&2
    rm -rf "$rcodesign_dir.tmp"
    if cargo install --quiet --locked --no-default-features apple-codesign --version "$RCODESIGN_VERSION" --root "$rcodesign_dir.tmp"; then
      rm -rf "$rcodesign_dir" && mv "$rcodesign_dir.tmp" "$rcodesign_dir"
    else
      echo "bootstrap: building rcodesign failed (see above)" >&2
    fi
  else
    echo "bootstrap: cargo is needed to build rcodesign (apple-codesign)" >&2
  fi
fi
if [ -x "$rcodesign_dir/bin/rcodesign" ]; then
  put "$rcodesign_dir/bin/rcodesign" rcodesign
else
  rm -f .tools/bin/rcodesign
  echo "bootstrap: no rcodesign: the macOS archives and their checks are skipped" >&2
fi

# The sandbox runs kube-apiserver, kube-controller-manager and etcd built from their release source
# (test/sandbox/kube/). Built once per release and cached (~/.cache/kubectl-encryption/sandbox);
# a cold build takes about 20 minutes on 2 cores, a cached one is found in a second.
command -v go >/dev/null 2>&1 || { echo "bootstrap: Go 1.26 or newer is needed to build the sandbox's Kubernetes (go not found)" >&2; exit 1; }
npm run --silent sandbox -- --build
