#!/usr/bin/env bash
# Builds release binaries that run in an image with nothing else in it (FROM scratch): statically
# linked glibc (`+crt-static` on <arch>-unknown-linux-gnu, for the platform it runs on: buildx's
# TARGETARCH when set, else `uname -m`; a multi-platform image builds each platform natively). The musl target is not installable
# offline; a static glibc program must never call getaddrinfo (glibc would need its shared NSS
# libraries at run time), so every name the binaries resolve goes through hickory-dns (reqwest's
# `hickory-dns` feature) and the Kubernetes client connects to the in-cluster IP address.
#
#   build-binary.sh OUT_DIR                                 the operator, release profile
#   build-binary.sh OUT_DIR [--profile P] PACKAGE:BIN ...   other binaries, or another profile
#
# The Dockerfile's build stage runs this very script, so `docker build` and the images the
# tests build without Docker (image/oci.py) hold the same binary.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: build-binary.sh OUT_DIR [--profile P] [PACKAGE:BIN ...]}; shift
profile=release
[ "${1:-}" = --profile ] && { profile=$2; shift 2; }
# Run from a test, this inherits what cargo sets for its test processes (CARGO_PKG_NAME,
# CARGO_MANIFEST_DIR, …): build scripts that watch those variables (ring's) would run again and
# every crate above them would be rebuilt, once per switch between a shell and a test.
for variable in $(compgen -e | grep -E '^(CARGO_PKG_|CARGO_MANIFEST_|CARGO_BIN_|CARGO_CRATE_NAME$|CARGO_PRIMARY_PACKAGE$|CARGO_TARGET_TMPDIR$|OUT_DIR$)'); do
  unset "$variable"
done
targets=("$@"); [ ${#targets[@]} -eq 0 ] && targets=(workos-convex-auth:workos-convex-auth)
arch=${TARGETARCH:-$(uname -m)}
case $arch in
  amd64 | x86_64) arch=x86_64 ;;
  arm64 | aarch64) arch=aarch64 ;;
  *) echo "build-binary.sh: unsupported platform $arch (amd64 and arm64 are)" >&2; exit 1 ;;
esac
triple=$arch-unknown-linux-gnu
args=()
for t in "${targets[@]}"; do args+=(-p "${t%%:*}" --bin "${t#*:}"); done
# RUSTFLAGS for the target only: build scripts and proc macros stay dynamically linked.
env "CARGO_TARGET_${arch^^}_UNKNOWN_LINUX_GNU_RUSTFLAGS=-C target-feature=+crt-static" \
  cargo build --locked --profile "$profile" --target "$triple" "${args[@]}" 2> >(grep -v "statically linked applications requires at runtime" >&2)
mkdir -p "$out"
for t in "${targets[@]}"; do
  b="${CARGO_TARGET_DIR:-target}/$triple/$profile/${t#*:}"
  # A dynamic binary would fail in the image with a bare "no such file or directory".
  if readelf -l "$b" | grep -q INTERP || readelf -d "$b" | grep -q NEEDED; then
    echo "build-binary.sh: $b is not statically linked" >&2; exit 1
  fi
  install -m 0755 "$b" "$out/${t#*:}"
done
