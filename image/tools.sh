#!/usr/bin/env bash
# The tools a release and its tests run, built from their registries once per machine and cached
# outside the repository, keyed by version (by content for the project's own helpers):
#   cosign           github.com/sigstore/cosign (Go module proxy): signs and verifies the image
#   cargo-cyclonedx  crates.io: the CycloneDX SBOM of the binary
#   actionlint       github.com/rhysd/actionlint (Go module proxy): checks .github/workflows
#   dockercontext    tests/tools/dockercontext: Docker's build context, by moby/patternmatcher
#   kstatus          tests/tools/kstatus: an object's kstatus verdict, by sigs.k8s.io/cli-utils
#
#   bash image/tools.sh TOOL ...     prints each tool's path, one per line, building it if missing
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
COSIGN_VERSION=v2.6.5
CARGO_CYCLONEDX_VERSION=0.5.7
ACTIONLINT_VERSION=v1.7.12
cache=${WCA_CACHE:-$HOME/.cache/workos-convex-auth}/tools
log() { echo "[tools] $*" >&2; }

# built DIR/NAME BUILD...: runs BUILD (which must write DIR/NAME) unless it is there; prints it.
built() {
  local path=$1 start=$SECONDS; shift
  if [ ! -x "$path" ]; then
    log "building $(basename "$path") into $(dirname "$path")"
    mkdir -p "$(dirname "$path")"
    "$@" >&2
    [ -x "$path" ] || { echo "tools.sh: the build wrote no $path" >&2; exit 1; }
    log "$(basename "$path"): built in $((SECONDS - start)) s"
  fi
  echo "$path"
}

go_module() { # go_module NAME PACKAGE VERSION
  local dir="$cache/$1-$3"
  built "$dir/$1" env CGO_ENABLED=0 GOFLAGS=-mod=mod GOBIN="$dir" \
    go install -trimpath -ldflags "-s -w" "$2@$3"
}

go_local() { # go_local NAME: the project's own helper in tests/tools/NAME, keyed by its content
  local src="$here/../tests/tools/$1" key dir
  key=$(cat "$src/main.go" "$src/go.mod" "$src/go.sum" | sha256sum | cut -c1-12)
  dir="$cache/$1-$key"
  built "$dir/$1" bash -c "cd '$src' && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags '-s -w' -o '$dir/$1' ."
}

for tool in "$@"; do
  case $tool in
    cosign) go_module cosign github.com/sigstore/cosign/v2/cmd/cosign "$COSIGN_VERSION" ;;
    actionlint) go_module actionlint github.com/rhysd/actionlint/cmd/actionlint "$ACTIONLINT_VERSION" ;;
    cargo-cyclonedx)
      # Its own throw-away target directory, like cargo-deny's (tests/run.sh).
      dir="$cache/cargo-cyclonedx-$CARGO_CYCLONEDX_VERSION"
      built "$dir/bin/cargo-cyclonedx" env -u CARGO_TARGET_DIR cargo install --quiet --locked \
        cargo-cyclonedx --version "$CARGO_CYCLONEDX_VERSION" --root "$dir" ;;
    dockercontext | kstatus) go_local "$tool" ;;
    *) echo "tools.sh: unknown tool $tool (cosign, cargo-cyclonedx, actionlint, dockercontext, kstatus)" >&2; exit 2 ;;
  esac
done
