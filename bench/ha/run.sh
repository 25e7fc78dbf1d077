#!/usr/bin/env bash
# High-availability benchmark on the local control plane (two operator replicas, 2000
# resources, steady state, takeovers, an apiserver outage); prints a Markdown table for
# BENCHMARKS.md. Builds the operator in release mode and runs operator/benches/ha.rs.
# WCA_BENCH_STEADY_SECONDS (default 300) sets the steady-state window; the whole run takes
# about 10 minutes with the default.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release --quiet -p workos-convex-auth --bin workos-convex-auth
WCA_CONTROL_PLANE_BIN=$(bash tests/control-plane/install.sh 2>/dev/null | tail -n 1)
export WCA_CONTROL_PLANE_BIN
WCA_OPERATOR_BIN=${CARGO_TARGET_DIR:-$PWD/target}/release/workos-convex-auth \
  cargo bench --quiet -p workos-convex-auth --bench ha
