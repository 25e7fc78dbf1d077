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

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
etcd_port=$(free_port); peer_port=$(free_port); api_port=$(free_port)

# Certificates: a throwaway CA, a serving cert for 127.0.0.1, a service-account signing key.
(
  cd "$dir"
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=wca-test-ca" \
    -keyout ca.key -out ca.crt 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=kube-apiserver" -keyout apiserver.key -out apiserver.csr 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >san.ext
  openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
    -extfile san.ext -out apiserver.crt 2>/dev/null
  openssl genrsa -out sa.key 2048 2>/dev/null
  openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
)
admin_token=$(python3 -c 'import secrets; print(secrets.token_hex(24))')
echo "$admin_token,wca-admin,wca-admin,system:masters" >"$dir/tokens.csv"

"$bin/etcd" --name default --data-dir "$dir/etcd" \
  --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
  --listen-peer-urls "http://127.0.0.1:$peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
  --initial-cluster "default=http://127.0.0.1:$peer_port" --unsafe-no-fsync --log-level error \
  >"$dir/etcd.log" 2>&1 &
pids+=($!)

"$bin/kube-apiserver" --etcd-servers "http://127.0.0.1:$etcd_port" \
  --bind-address 127.0.0.1 --secure-port "$api_port" --advertise-address 127.0.0.1 \
  --tls-cert-file "$dir/apiserver.crt" --tls-private-key-file "$dir/apiserver.key" \
  --token-auth-file "$dir/tokens.csv" --client-ca-file "$dir/ca.crt" \
  --service-account-issuer https://kubernetes.default.svc.cluster.local \
  --service-account-signing-key-file "$dir/sa.key" --service-account-key-file "$dir/sa.pub" \
  --service-cluster-ip-range 10.96.0.0/16 --authorization-mode RBAC \
  --disable-admission-plugins ServiceAccount --allow-privileged --endpoint-reconciler-type none \
  --audit-policy-file "$here/audit-policy.yaml" --audit-log-path "$dir/audit.log" \
  >"$dir/apiserver.log" 2>&1 &
pids+=($!)

cat >"$dir/kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters:
- name: wca-local
  cluster:
    server: https://127.0.0.1:$api_port
    certificate-authority: $dir/ca.crt
users:
- name: wca-admin
  user:
    token: $admin_token
contexts:
- name: wca-local
  context: {cluster: wca-local, user: wca-admin, namespace: default}
current-context: wca-local
KC

start=$SECONDS
until curl -sf --cacert "$dir/ca.crt" -H "Authorization: Bearer $admin_token" \
  "https://127.0.0.1:$api_port/readyz" >/dev/null 2>&1; do
  for p in "${pids[@]}"; do
    if ! kill -0 "$p" 2>/dev/null; then
      echo "control plane failed to start; logs:" >&2
      tail -n 30 "$dir/etcd.log" "$dir/apiserver.log" >&2
      exit 1
    fi
  done
  if [ $((SECONDS - start)) -gt 120 ]; then echo "apiserver not ready after 120 s" >&2; tail -n 30 "$dir/apiserver.log" >&2; exit 1; fi
  sleep 0.2
done
echo "[control-plane] ready in $((SECONDS - start)) s: kube-apiserver https://127.0.0.1:$api_port, etcd 127.0.0.1:$etcd_port, audit log $dir/audit.log" >&2
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
