#!/usr/bin/env bash
# Benchmarks on the real local node (BENCHMARKS.md): bash bench/node/run.sh
#   1. helm install → operator pod Ready (3 rounds, helm uninstall between them)
#   2. kubectl apply of a resource → its JWKS served through the Ingress (10 rounds, median)
#   3. a mirror pod's RSS under a wrk load through its Service (2 threads, 32 connections, 20 s)
#   4. the node's memory: RSS of every cluster process, with the operator and 10 resources
# Needs root; starts and tears down its own node (tests/node/up.sh). Prints a Markdown table.
# Traffic goes only to the node's bridge (198.18.0.0/15), and the load is bounded in time.
set -euo pipefail
cd "$(dirname "$0")/../.."
CLIENT=client_01BENCHNODE000000000000000
ROUNDS=${ROUNDS:-10}
say() { echo "[bench] $*" >&2; }
ms() { date +%s%3N; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
command -v wrk >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null

bin=$(bash tests/control-plane/install.sh --node | tail -n 1)
export PATH="$bin:$PATH" WCA_CONTROL_PLANE_BIN=$bin
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-${WCA_CACHE:-$HOME/.cache/workos-convex-auth}/target}
mapfile -t images < <(bash image/build.sh)

work=$(mktemp -d)
mkfifo "$work/fifo"
bash tests/node/up.sh --until-stdin-closes --image "${images[0]}" --image "${images[1]}" <"$work/fifo" >"$work/out" &
exec 3>"$work/fifo"
trap 'exec 3>&-; wait; rm -rf "$work"' EXIT
until grep -q '^KUBECONFIG=' "$work/out"; do kill -0 $! 2>/dev/null || exit 1; sleep 0.2; done
export KUBECONFIG=$(sed -n 's/^KUBECONFIG=//p' "$work/out")
ip=$(sed -n 's/^INGRESS_IP=//p' "$work/out")

install_chart() {
  helm install wca charts/workos-convex-auth -n wca-system --create-namespace \
    --set image.repository=wca.local/workos-convex-auth --set image.tag=dev --set image.pullPolicy=Never \
    --set policy.upstream.allowHttp=true --set 'policy.upstream.allowedHosts={fake-workos}' \
    --wait --timeout 180s >/dev/null
}
say "1. helm install → operator pod Ready"
installs=()
for round in 1 2 3; do
  t0=$(ms); install_chart; installs+=($(($(ms) - t0)))
  if [ $round -lt 3 ]; then
    helm uninstall wca -n wca-system --wait >/dev/null
    kubectl -n wca-system wait --for=delete pod -l app.kubernetes.io/component=operator --timeout=60s >/dev/null 2>&1 || true
  fi
done

say "2. kubectl apply → JWKS served through the Ingress ($ROUNDS rounds)"
kubectl create namespace bench >/dev/null
kubectl -n bench create configmap fake-workos-keys --from-file=jwks.json=tests/fixtures/keys/jwks-rsa.json >/dev/null
kubectl -n bench apply -f tests/node/fake-workos.yaml >/dev/null
kubectl -n bench rollout status deployment/fake-workos --timeout=120s >/dev/null
(
  cd "$work"
  openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=bench CA" -keyout ca.key -out ca.crt 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=*.bench.test" -keyout tls.key -out tls.csr 2>/dev/null
  printf 'subjectAltName=DNS:*.bench.test\n' >san.ext
  openssl x509 -req -in tls.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 1 -extfile san.ext -out tls.crt 2>/dev/null
)
kubectl -n bench create secret tls bench-tls --cert "$work/tls.crt" --key "$work/tls.key" >/dev/null
served=()
for round in $(seq 1 "$ROUNDS"); do
  host="jwks-$round.bench.test"
  t0=$(ms)
  kubectl apply -f - >/dev/null <<YAML
apiVersion: workos-convex.io/v1alpha1
kind: WorkOSConvexAuth
metadata: {name: bench-$round, namespace: bench}
spec:
  clientId: $CLIENT
  jwks: {upstreamBase: "http://fake-workos"}
  ingress: {enabled: true, host: $host, className: traefik, tlsSecretName: bench-tls}
YAML
  until curl -sf --resolve "$host:443:$ip" --cacert "$work/ca.crt" "https://$host/sso/jwks/$CLIENT" 2>/dev/null | grep -q test-rsa-a; do
    [ $(($(ms) - t0)) -gt 120000 ] && { say "round $round: not served after 120 s"; exit 1; }
    sleep 0.05
  done
  served+=($(($(ms) - t0)))
done

# The container processes of a pod, found through their cgroup (named after the container id).
pod_pids() {
  local id
  for id in $(kubectl -n "$1" get pod "$2" -o jsonpath='{.status.containerStatuses[*].containerID}' | sed 's#containerd://##g'); do
    find /sys/fs/cgroup/pids/kubepods -type d -name "$id" -exec cat {}/cgroup.procs \;
  done
}
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
hwm_kib() { awk '/^VmHWM/ {print $2}' "/proc/$1/status"; }

say "3. wrk through the Service of bench-1 (20 s)"
svc=$(kubectl -n bench get service bench-1-jwks -o jsonpath='{.spec.clusterIP}')
pod=$(kubectl -n bench get pods -l app.kubernetes.io/instance=bench-1,app.kubernetes.io/component=jwks-mirror -o jsonpath='{.items[0].metadata.name}')
pids=$(pod_pids bench "$pod")
rss_before=0; for p in $pids; do rss_before=$((rss_before + $(rss_kib "$p"))); done
wrk -t2 -c32 -d20s --latency "http://$svc/sso/jwks/$CLIENT" >"$work/wrk" 2>&1
peak=0; for p in $pids; do peak=$((peak + $(hwm_kib "$p"))); done
rps=$(awk '/^Requests\/sec/ {print $2}' "$work/wrk")
p99=$(awk '$1 == "99%" {print $2}' "$work/wrk")
non2xx=$(awk '/Non-2xx/ {print $5}' "$work/wrk"); non2xx=${non2xx:-0}

say "4. node memory"
mem_table=""
total=0
for comm in etcd kube-apiserver kube-controller kube-scheduler kubelet kube-proxy containerd containerd-shim coredns traefik workos-convex-a fake-workos pause; do
  kib=0; n=0
  for p in $(pgrep -x "$comm"); do kib=$((kib + $(rss_kib "$p"))); n=$((n + 1)); done
  [ $n -eq 0 ] && continue
  total=$((total + kib))
  mem_table+="| $comm | $n | $((kib / 1024)) MiB |"$'\n'
done

cat <<TXT

## Real node (bench/node/run.sh, $(date -u +%Y-%m-%d), $(nproc) cores)

| measure | result |
| --- | --- |
| helm install → operator pod Ready (3 rounds) | $(printf '%s ms ' "${installs[@]}")(median $(printf '%s\n' "${installs[@]}" | median) ms) |
| kubectl apply → JWKS served through the Ingress, median of $ROUNDS | $(printf '%s\n' "${served[@]}" | median) ms (min $(printf '%s\n' "${served[@]}" | sort -n | head -1), max $(printf '%s\n' "${served[@]}" | sort -n | tail -1)) |
| wrk through the Service (2 threads, 32 connections, 20 s) | $rps requests/s, p99 $p99, $non2xx non-2xx |
| mirror pod RSS: idle → peak under that load | $((rss_before / 1024)) MiB → $((peak / 1024)) MiB |
| every cluster process (node, control plane, add-ons, operator, 10 resources' mirrors) | $((total / 1024)) MiB |

| process | count | RSS |
| --- | --- | --- |
$mem_table
TXT
