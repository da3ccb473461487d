#!/usr/bin/env bash
# The README demo: the plugin's main workflow. Until the sandbox lands it runs the offline path.
set -euo pipefail
cd "$(dirname "$0")/.."
run() { echo "+ kubectl encryption $*" >&2; ./bin/run.js "$@"; }
run version
