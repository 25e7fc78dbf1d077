#!/usr/bin/env bash
# Builds the images the local node runs, as OCI archives, without Docker:
#   OUT_DIR/workos-convex-auth.tar   wca.local/workos-convex-auth:dev   (the Dockerfile)
#   OUT_DIR/fake-workos.tar          wca.local/fake-workos:dev          (tests/node/images/)
# from static binaries (image/build-binary.sh): the operator's release build, the fake's quick
# `test-tool` profile. Prints the two archive paths.
#   bash image/build.sh [OUT_DIR]     (default: $CARGO_TARGET_DIR/images, or target/images)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-${CARGO_TARGET_DIR:-target}/images}
# The Dockerfile's build stage leaves its binaries in /out: mirror that under $stage.
stage="$out/build-stage"
bash image/build-binary.sh "$stage/out"
bash image/build-binary.sh "$stage/out" --profile test-tool wca-test-harness:fake-workos
python3 image/oci.py --dockerfile Dockerfile --stage build="$stage" \
  --tag wca.local/workos-convex-auth:dev --out "$out/workos-convex-auth.tar" >&2
python3 image/oci.py --dockerfile tests/node/images/fake-workos.Dockerfile --context "$stage/out" \
  --tag wca.local/fake-workos:dev --out "$out/fake-workos.tar" >&2
echo "$out/workos-convex-auth.tar"
echo "$out/fake-workos.tar"
