#!/usr/bin/env bash
# Starts a local Kubernetes control plane (etcd + kube-apiserver) on free loopback ports.
#
#   up.sh                      foreground: prints `export KUBECONFIG=...`, Ctrl-C tears it down
#   up.sh --until-stdin-closes used by the Rust test harness: runs until its stdin closes
#                              (so a panicking or killed test process still tears it down)
#
# Prints `KUBECONFIG=<path>` once the apiserver answers /readyz. Everything lives in one temp
# dir (etcd data on tmpfs when /dev/shm exists), removed on exit with both processes.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
mode=${1:-foreground}

bin=${WCA_CONTROL_PLANE_BIN:-$("$here/install.sh" | tail -n 1)}
base=/tmp; [ -d /dev/shm ] && [ -w /dev/shm ] && base=/dev/shm
dir=$(mktemp -d "$base/wca-control-plane.XXXXXX")
pids=()
cleanup() {
  trap - EXIT INT TERM
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# shellcheck source=lib.sh
source "$here/lib.sh"
cp_pki "$dir" IP:127.0.0.1 DNS:localhost
cp_start_etcd "$dir" "$dir/etcd"
# No ServiceAccount admission (no token controller runs to back it) and no endpoint reconciler:
# nothing but this API server exists. OwnerReferencesPermissionEnforcement is on, as on clusters
# that harden owner references: the chart's RBAC must work there (the children's owner
# references carry no blockOwnerDeletion, which it would check against */finalizers).
cp_start_apiserver "$dir" 127.0.0.1 10.96.0.0/16 \
  --disable-admission-plugins ServiceAccount --endpoint-reconciler-type none \
  --enable-admission-plugins OwnerReferencesPermissionEnforcement

start=$SECONDS
cp_wait_ready "$dir" || exit 1
echo "[control-plane] ready in $((SECONDS - start)) s: kube-apiserver $api_url, etcd $etcd_url, audit log $dir/audit.log" >&2
echo "PIDS=${pids[*]}"
echo "KUBECONFIG=$dir/kubeconfig"

if [ "$mode" = "--until-stdin-closes" ]; then
  # In the background so a TERM or INT runs the cleanup trap at once (bash defers traps
  # until a foreground command ends).
  cat <&0 >/dev/null &  # explicit: a background job would otherwise read /dev/null
  pids+=($!)
  wait "$!" || true
else
  echo "export KUBECONFIG=$dir/kubeconfig   # in another shell; Ctrl-C here tears the control plane down" >&2
  while :; do
    for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null || { echo "a control-plane process exited" >&2; exit 1; }; done
    sleep 1
  done
fi
