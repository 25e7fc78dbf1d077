#!/usr/bin/env bash
# Starts a local Kubernetes control plane (etcd + kube-apiserver) on free loopback ports.
#
#   up.sh                      foreground: prints `export KUBECONFIG=...`, Ctrl-C tears it down
#   up.sh --until-stdin-closes [--second-apiserver]
#                              used by the Rust test harness: runs until its stdin closes (so a
#                              panicking or killed test process still tears it down). Reads
#                              commands on stdin meanwhile, one per line, for fault tests:
#                                kill NAME    SIGKILL etcd, apiserver or apiserver-2
#                                start NAME   start it again: same command line, ports and data
#                              and appends each handled command to DIR/supervisor.done.
#                              --second-apiserver: another kube-apiserver on the same etcd
#                              (SECOND_KUBECONFIG=), as in a control plane of several nodes.
#                              --oldest: the kube-apiserver of the oldest supported version
#                              (KUBE_OLDEST_VERSION in versions.env) in place of the current one.
#
# Prints `KUBECONFIG=<path>` once the apiserver answers /readyz. Everything lives in one temp
# dir (etcd data on tmpfs when /dev/shm exists), removed on exit with both processes.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
mode=${1:-foreground}
second_apiserver=false
for arg in "${@:2}"; do
  case $arg in
    --second-apiserver) second_apiserver=true ;;
    --oldest) cp_apiserver_binary=kube-apiserver-oldest ;;
    *) echo "unknown argument $arg" >&2; exit 2 ;;
  esac
done

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
if $second_apiserver; then
  first_url=$api_url
  cp_apiserver=apiserver-2 cp_start_apiserver "$dir" 127.0.0.1 10.96.0.0/16 \
    --disable-admission-plugins ServiceAccount --endpoint-reconciler-type none \
    --enable-admission-plugins OwnerReferencesPermissionEnforcement
  cp_wait_ready "$dir" || exit 1
  echo "SECOND_KUBECONFIG=$dir/apiserver-2.kubeconfig"
  api_url=$first_url
fi
echo "[control-plane] ready in $((SECONDS - start)) s: kube-apiserver $api_url, etcd $etcd_url, audit log $dir/audit.log" >&2
echo "PIDS=${pids[*]}"
echo "KUBECONFIG=$dir/kubeconfig"

if [ "$mode" = "--until-stdin-closes" ]; then
  # `read` is a builtin: a TERM or INT runs the cleanup trap at once.
  while IFS= read -r command; do
    name=${command#* }
    case $command in
      "kill etcd" | "kill apiserver" | "kill apiserver-2")
        pid_var="cp_pid_${name//-/_}"
        kill -9 "${!pid_var}" 2>/dev/null || true
        wait "${!pid_var}" 2>/dev/null || true
        ;;
      "start etcd" | "start apiserver" | "start apiserver-2") cp_spawn "$dir" "$name" ;;
      *) echo "[control-plane] unknown command: $command" >&2 ;;
    esac
    echo "$command" >>"$dir/supervisor.done"
  done
else
  echo "export KUBECONFIG=$dir/kubeconfig   # in another shell; Ctrl-C here tears the control plane down" >&2
  while :; do
    for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null || { echo "a control-plane process exited" >&2; exit 1; }; done
    sleep 1
  done
fi
