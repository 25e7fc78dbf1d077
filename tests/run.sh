#!/usr/bin/env bash
# The test command (README): sets up everything a fresh machine lacks, then runs every test.
#   - the local cluster's binaries (kube-apiserver, etcd, kubectl, helm; and for the real node
#     kube-controller-manager, kube-scheduler, kubelet, kube-proxy, CoreDNS, Traefik, the pause
#     binary; containerd, runc, CNI plugins, iptables from Debian), cached outside the repo
#   - promtool (Debian's prometheus package), for the chart's alerts
#   - lua5.1 and lua-cjson (Debian), for the Argo CD health check; the kstatus helper (tools.sh)
#   - the release's parts: Debian's docker-registry, skopeo, htpasswd, shellcheck and tinyproxy; cosign,
#     cargo-cyclonedx and actionlint (image/tools.sh), the kube-apiserver of the oldest
#     supported Kubernetes (install.sh)
#   - the npm packages the tests use (convex + typescript + zod; jose), the Python validator
#   - formatting, cargo deny (licenses, bans, sources; advisories when reachable), clippy
#   - the images of the real node (the operator's, from the Dockerfile; the fake WorkOS)
#   - the whole Rust test suite: unit, golden, conformance, convex package checks, JWKS mirror,
#     the tests against the real apiserver, and the end-to-end tests on the real node
# Needs root (the real node sets up a bridge, mounts and cgroups).
#
# `bash tests/run.sh --fast` runs everything but the real-node part (the images, and the test
# binaries `operator/tests/e2e` and `tests/harness/tests/node.rs`): the loop while developing.
#
# Cargo builds into ${WCA_CACHE:-~/.cache/workos-convex-auth}/target unless CARGO_TARGET_DIR
# says otherwise, so a fresh clone reuses compiled dependencies; cargo still rebuilds whatever
# the clone changed.
set -euo pipefail
cd "$(dirname "$0")/.."
fast=false
case "${1:-}" in
  --fast) fast=true ;;
  "") ;;
  *) echo "usage: bash tests/run.sh [--fast]" >&2; exit 2 ;;
esac
began=$SECONDS
last=""
step() { # prints how long the previous step took, then the next step's title
  [ -n "$last" ] && echo "    ($((SECONDS - last)) s)"
  last=$SECONDS; echo; echo "==> $*"
}

step "system packages"
missing=()
for tool in openssl curl python3 pip3; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  apt-get update -qq && apt-get install -y -qq openssl curl python3 python3-pip >/dev/null
fi
# promtool checks and unit-tests the chart's alerts (operator/tests/it/monitoring.rs): Debian
# ships it in the prometheus package (the server comes along; nothing starts it here).
if ! command -v promtool >/dev/null; then
  echo "installing: prometheus (for promtool)"
  apt-get update -qq && apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi
# The Argo CD health check's tests (tests/argocd/run_health.lua): Lua 5.1, the dialect of
# Argo's gopher-lua, and lua-cjson to read the JSON fixtures.
if ! command -v lua5.1 >/dev/null || ! lua5.1 -e 'require("cjson")' 2>/dev/null; then
  echo "installing: lua5.1 lua-cjson"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends lua5.1 lua-cjson >/dev/null 2>&1 ||
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends lua5.1 lua-cjson >/dev/null; }
fi
# The release tests (operator/tests/e2e/release.rs): a real OCI registry (distribution 2.8) with
# an htpasswd file, skopeo to push and inspect images; shellcheck for the workflow's scripts
# (actionlint runs it on every `run:` step); the egress tests' forward proxy (tinyproxy).
release_packages=()
for pair in skopeo:skopeo docker-registry:docker-registry htpasswd:apache2-utils shellcheck:shellcheck tinyproxy:tinyproxy; do
  command -v "${pair%%:*}" >/dev/null || release_packages+=("${pair#*:}")
done
if [ ${#release_packages[@]} -gt 0 ]; then
  echo "installing: ${release_packages[*]}"
  # policy-rc.d: the packages' own registry and proxy services must not start (the tests run
  # their own).
  policy=/usr/sbin/policy-rc.d added_policy=false
  [ -e $policy ] || { printf '#!/bin/sh\nexit 101\n' >$policy; chmod +x $policy; added_policy=true; }
  { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${release_packages[@]}" >/dev/null 2>&1 ||
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${release_packages[@]}" >/dev/null; }; }
  if $added_policy; then rm -f $policy; fi
fi
# Toolchains are prerequisites (README): Debian's Go is too old for kube-apiserver v1.35.
for tool in cargo go node npm; do
  command -v "$tool" >/dev/null || { echo "missing $tool: install Rust, Go >= 1.25 and Node 20 first" >&2; exit 1; }
done
$fast || [ "$(id -u)" = 0 ] || { echo "run as root: the real node needs it" >&2; exit 1; }

# The release tools, built from the Go module proxy and crates.io once per machine and cached by
# version (README, "Supply chain"): in the background, so that on a cold machine their downloads
# overlap the cluster's build; waited for before the tests. cosign and cargo-cyclonedx only for
# the release tests of the full run.
step "release tools, in the background (image/tools.sh)"
release_tools=(actionlint dockercontext kstatus)
$fast || release_tools+=(cosign cargo-cyclonedx)
tools_log=$(mktemp)
bash image/tools.sh "${release_tools[@]}" >"$tools_log" 2>&1 &
tools_pid=$!
echo "${release_tools[*]}"

if $fast; then
  step "local control plane (tests/control-plane/install.sh)"
  WCA_CONTROL_PLANE_BIN=$(bash tests/control-plane/install.sh | tail -n 1)
else
  step "local cluster (tests/control-plane/install.sh --node)"
  WCA_CONTROL_PLANE_BIN=$(bash tests/control-plane/install.sh --node | tail -n 1)
fi
export WCA_CONTROL_PLANE_BIN

step "npm packages"
for dir in tests/typescript operator/tests/js; do
  (cd "$dir" && npm ci --no-audit --no-fund --silent)
done

step "python packages (offline Kubernetes schema validation of the chart)"
python3 -m pip install --quiet kubernetes-validate==1.37.0

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-${WCA_CACHE:-$HOME/.cache/workos-convex-auth}/target}
mkdir -p "$CARGO_TARGET_DIR"

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo deny (licenses, bans, sources; advisories when a database is reachable)"
# Built from crates.io once per machine, cached outside the repository by version: a cold
# install compiles for several minutes (README, "Supply chain"). Its own throw-away target
# directory (CARGO_TARGET_DIR unset), so the project's is not filled with cargo-deny's objects.
deny_version=0.20.2
deny_root=${WCA_CACHE:-$HOME/.cache/workos-convex-auth}/tools/cargo-deny-$deny_version
if [ ! -x "$deny_root/bin/cargo-deny" ]; then
  echo "installing cargo-deny $deny_version into $deny_root"
  env -u CARGO_TARGET_DIR cargo install --quiet --locked cargo-deny --version "$deny_version" --root "$deny_root"
fi
export PATH="$deny_root/bin:$PATH"
cargo deny check --hide-inclusion-graph licenses bans sources
# The RustSec advisory database is a git repository on GitHub, not on a package registry:
# checked against it when it can be fetched, or against a copy already on this machine.
advisory_dbs=${CARGO_HOME:-$HOME/.cargo}/advisory-dbs
if timeout 120 cargo deny fetch db >/dev/null 2>&1; then
  cargo deny check --hide-inclusion-graph advisories
elif compgen -G "$advisory_dbs/*/.git" >/dev/null; then
  echo "advisories: the database cannot be fetched; checking against the copy in $advisory_dbs (it may be stale)"
  cargo deny --offline check --hide-inclusion-graph advisories
else
  echo "advisories: SKIPPED: the RustSec advisory database cannot be fetched from this machine and no copy is in $advisory_dbs"
fi

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --quiet -- -D warnings

step "release tools (waiting for the background build)"
wait "$tools_pid" || { cat "$tools_log"; echo "image/tools.sh failed" >&2; exit 1; }
grep '^\[tools\]' "$tools_log" || echo "all cached"
rm -f "$tools_log"

step "health fixtures: kstatus and the Argo CD health check (tests/fixtures/health)"
kstatus_bin=$(bash image/tools.sh kstatus)
lua5.1 tests/argocd/run_health.lua --test charts/workos-convex-auth/files/argocd-health.lua \
  tests/fixtures/health/health_test.json "$kstatus_bin" | grep -v '^ok '

log="$CARGO_TARGET_DIR/test-output.log"
# Most integration tests wait on an API server or a process, not on a core: four at a time on
# two cores (measured: README, "Development").
export RUST_TEST_THREADS=${RUST_TEST_THREADS:-4}
if $fast; then
  step "cargo test (without the real-node part: images, tests/e2e, the harness's node test)"
  cargo test --workspace --no-fail-fast --lib --bins --test it 2>&1 | tee "$log"
else
  step "images for the real node (image/build.sh: release binaries, OCI archives)"
  WCA_IMAGES_DIR="$CARGO_TARGET_DIR/images"
  bash image/build.sh "$WCA_IMAGES_DIR" >/dev/null
  export WCA_IMAGES_DIR

  step "cargo test"
  cargo test --workspace --no-fail-fast 2>&1 | tee "$log"
fi
echo "    ($((SECONDS - last)) s)"
echo "whole run: $((SECONDS - began)) s"
# One closing line for the whole run, in the form CI reads.
awk '/^test result:/ { p += $4; f += $6; s += $8 } END { printf "%d passed, %d failed, %d skipped\n", p, f, s }' "$log"
