#!/usr/bin/env bash
# Controller benchmark on the local control plane; prints a Markdown table for BENCHMARKS.md.
# Builds the operator in release mode and runs operator/benches/controller.rs.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release --quiet -p workos-convex-auth --bin workos-convex-auth
WCA_CONTROL_PLANE_BIN=$(bash tests/control-plane/install.sh 2>/dev/null | tail -n 1)
export WCA_CONTROL_PLANE_BIN
WCA_OPERATOR_BIN=$PWD/target/release/workos-convex-auth cargo bench --quiet -p workos-convex-auth --bench controller
