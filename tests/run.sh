#!/usr/bin/env bash
# The test command (README): sets up everything a fresh machine lacks, then runs every test.
#   - the local control plane (kube-apiserver, etcd, kubectl, helm), cached outside the repo
#   - the npm packages the tests use (convex + typescript + zod; jose)
#   - formatting, clippy, and the whole Rust test suite (unit, golden, conformance,
#     convex package checks, JWKS mirror, and the tests against the real apiserver)
set -euo pipefail
cd "$(dirname "$0")/.."
step() { echo; echo "==> $*"; }

step "system packages"
missing=()
for tool in openssl curl python3; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  apt-get update -qq && apt-get install -y -qq "${missing[@]}" python3-pip >/dev/null
fi
# Toolchains are prerequisites (README): Debian's Go is too old for kube-apiserver v1.35.
for tool in cargo go node npm; do
  command -v "$tool" >/dev/null || { echo "missing $tool: install Rust, Go >= 1.25 and Node 20 first" >&2; exit 1; }
done

step "control plane (tests/control-plane/install.sh)"
WCA_CONTROL_PLANE_BIN=$(bash tests/control-plane/install.sh | tail -n 1)
export WCA_CONTROL_PLANE_BIN

step "npm packages"
for dir in tests/typescript operator/tests/js; do
  (cd "$dir" && npm ci --no-audit --no-fund --silent)
done

step "python packages (offline Kubernetes schema validation of the chart)"
python3 -m pip install --quiet kubernetes-validate==1.37.0

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --quiet -- -D warnings

step "cargo test"
cargo test --workspace --no-fail-fast 2>&1 | tee target/test-output.log
# One closing line for the whole run, in the form CI reads.
awk '/^test result:/ { p += $4; f += $6; s += $8 } END { printf "%d passed, %d failed, %d skipped\n", p, f, s }' target/test-output.log
