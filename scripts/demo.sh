#!/usr/bin/env bash
# The README demo: the plugin's main workflow. Until the sandbox lands it runs the offline path.
set -euo pipefail
cd "$(dirname "$0")/.."
run() { echo "+ kubectl encryption $*" >&2; ./bin/run.js "$@"; }
run version

# --- offline: write a config, check it, and see what the validator catches -------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/kubectl-encryption-demo.XXXXXX")
chmod 700 "$work"
trap 'rm -rf "$work"' EXIT

echo >&2
echo "# 1. A new EncryptionConfiguration (secretbox key, identity fallback for the first migration)." >&2
echo "#    Written 0600; only the path, key name and fingerprint are printed." >&2
run config generate --resource secrets --resource configmaps --identity-fallback \
  --key-name demo-key-1 --output-file "$work/enc.yaml"
ls -l "$work/enc.yaml" | awk '{print "  mode " $1 "  " $NF}' >&2

echo >&2
echo "# 2. Validate it as kube-apiserver would (exit 0; warnings on stderr)." >&2
run config validate "$work/enc.yaml"

echo >&2
echo "# 3. A file the apiserver accepts, but that does not do what it seems to: warnings, exit 0." >&2
cat > "$work/risky.yaml" <<'YAML'
apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources: [events]
    providers: [{identity: {}}]
  - resources: ["*.*"]
    providers:
      - identity: {}
      - aescbc:
          keys: [{name: key1, secret: YD3rEBXKcb4rc67whX13gR81LAc7YQjXLZgQowkU3/Q=}]
YAML
run config validate "$work/risky.yaml"

echo >&2
echo "# 4. A broken file: the same resource twice (secrets = secrets.), a key that is not Go base64." >&2
cat > "$work/broken.yaml" <<'YAML'
apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources: [secrets, secrets.]
    providers:
      - aesgcm:
          keys:
            - name: key1
              secret: AAECAwQFBgcICQoLDA0ODw    # no padding: Go rejects it
      - identity: {}
YAML
set +e
run config validate "$work/broken.yaml"
code=$?
set -e
echo "  exit code $code (3 = invalid)" >&2

echo >&2
echo "# 5. Masking is caught too (the apiserver reports it while building transformers)." >&2
cat > "$work/masked.yaml" <<'YAML'
apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources: ["*."]
    providers: [{identity: {}}]
  - resources: [secrets]
    providers: [{secretbox: {keys: [{name: k1, secret: Hx4dHBsaGRgXFhUUExIREA8ODQwLCgkIBwYFBAMCAQA=}]}}]
YAML
set +e
run config validate "$work/masked.yaml" -o json
code=$?
set -e
echo "  exit code $code" >&2
