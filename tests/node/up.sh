#!/usr/bin/env bash
# Starts a real single-node Kubernetes cluster on this machine and tears it down on exit.
#
#   up.sh [--image FILE.tar ...]                     foreground: Ctrl-C tears it down
#   up.sh --until-stdin-closes [--image FILE.tar ...] used by the Rust test harness and the demo:
#                                                     runs until its stdin closes
#
# etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubelet and kube-proxy (all
# $KUBE_VERSION), Debian's containerd + runc + CNI bridge plugin, CoreDNS (cluster DNS) and
# Traefik (the ingress controller), every image imported from an OCI archive built here
# (--image adds more, such as the operator's). Needs root. Only one node runs per machine
# (a lock in the cache dir; a second one waits).
#
# Traefik is also the Gateway API controller: the standard CRDs ($GATEWAY_API_VERSION, from the
# Go module sigs.k8s.io/gateway-api, as the harness installs them), the GatewayClass `traefik`
# and the Gateway traefik/public, whose listener `web` (HTTP, port 8000: Traefik's entryPoint
# behind port 80) takes HTTPRoutes from every namespace.
#
# Addresses: the node and its pods on the bridge wca0, 198.18.0.1 and 198.18.0.0/24; Services
# in 198.19.0.0/24 (cluster DNS 198.19.0.10); the ingress controller at 198.18.0.1:80 and :443
# (its Service's externalIP). Nothing routes off the machine: pods have no masquerading and no
# upstream DNS.
#
# Prints, once the node is Ready and DNS and ingress answer:
#   SUPERVISOR=<this script>  PIDS=<the processes>  DIR=<work dir>  NODE_IP=198.18.0.1
#   INGRESS_IP=198.18.0.1
#   KUBECONFIG=<admin kubeconfig>   (last)
#
# Teardown (on exit, however it ends) removes every process, mount, interface, cgroup,
# iptables/nftables rule and directory this created and restores the sysctls it changed;
# tests/harness/tests/node.rs proves it against a snapshot of the host taken before.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
mode=foreground
images=()
while [ $# -gt 0 ]; do
  case $1 in
    --until-stdin-closes) mode=$1 ;;
    --image) images+=("$2"); shift ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
[ "$(id -u)" = 0 ] || { echo "the node needs root (network, mounts, cgroups)" >&2; exit 1; }

bin=${WCA_CONTROL_PLANE_BIN:-$(bash "$here/../control-plane/install.sh" --node | tail -n 1)}
source "$here/../control-plane/versions.env"
source "$here/../control-plane/lib.sh"
source "$here/teardown.sh"
cache=${WCA_CACHE:-$HOME/.cache/workos-convex-auth}
mkdir -p "$cache"
# The Gateway API CRDs' folder, found as tests/harness/src/lib.rs gateway_api_crds() finds it:
# outside any module, `go mod download` only fills (or, once done, reads) Go's module cache.
gateway_crds=$(cd / && go mod download -json "sigs.k8s.io/gateway-api@$GATEWAY_API_VERSION" |
  sed -n 's/.*"Dir": "\(.*\)".*/\1/p')/config/crd/standard
[ -d "$gateway_crds" ] || { echo "no Gateway API CRDs at $gateway_crds" >&2; exit 1; }
NODE_IP=198.18.0.1 POD_CIDR=198.18.0.0/24 SERVICE_CIDR=198.19.0.0/24 DNS_IP=198.19.0.10
NODE_NAME=wca-node BRIDGE=wca0

t0=$SECONDS
log() { echo "[node +$((SECONDS - t0))s] $*" >&2; }

# One node per machine: the bridge, the addresses and a few fixed host paths are global.
exec 9>"$cache/node.lock"
if ! flock -n 9; then
  log "another local node is running; waiting for it to finish (lock $cache/node.lock)"
  flock -w 1800 9 || { echo "timed out waiting for the other node" >&2; exit 1; }
fi
# A node whose supervisor was SIGKILLed left its work dir behind: clean that up first.
for stale in /tmp/wca-node.*; do [ -d "$stale" ] && node_teardown "$stale"; done

dir=$(mktemp -d /tmp/wca-node.XXXXXX)
pids=()
cleanup() {
  trap - EXIT INT TERM
  local s=$SECONDS
  node_teardown "$dir"
  echo "[node] torn down in $((SECONDS - s)) s" >&2
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# Everything teardown needs to know lives in $dir, so that a later run can undo a killed one.
record_pid() { pids+=("$1"); echo "$1 $2" >>"$dir/pids"; }
start() { # start NAME command...: in the background, logging to $dir/NAME.log
  local name=$1; shift
  "$@" >"$dir/$name.log" 2>&1 9>&- &  # not the lock: a killed run's orphans must not hold it
  record_pid $! "$name"
}
render() { # render TEMPLATE > file: @DIR@ @NODE_IP@ ... filled in
  sed -e "s#@DIR@#$dir#g" -e "s#@NODE_IP@#$NODE_IP#g" -e "s#@POD_CIDR@#$POD_CIDR#g" \
    -e "s#@DNS_IP@#$DNS_IP#g" -e "s#@BRIDGE@#$BRIDGE#g" -e "s#@NODE_NAME@#$NODE_NAME#g" \
    -e "s#@COREDNS_VERSION@#$COREDNS_VERSION#g" -e "s#@TRAEFIK_VERSION@#$TRAEFIK_VERSION#g" "$1"
}

# 0. What teardown restores: sysctls the kubelet and the bridge plugin change, nftables tables
#    that exist now, host directories that do not exist yet (fixed paths of containerd 1.6,
#    libcni and the kubelet).
mkdir -p "$dir/baseline"
sysctl -e $NODE_SYSCTLS >"$dir/baseline/sysctl.conf" 2>/dev/null || true
nft list tables >"$dir/baseline/nft-tables" 2>/dev/null || true
for d in $NODE_HOST_DIRS; do [ -e "$d" ] || echo "$d"; done >"$dir/baseline/created-dirs"

# 1. The bridge, created before the kubelet so the node IP exists (this kernel has no `dummy`).
ip link add "$BRIDGE" type bridge
ip addr add "$NODE_IP/24" dev "$BRIDGE"
ip link set "$BRIDGE" up
# Nothing leaves the machine: Service addresses route to the bridge, never to the default route
# (kube-proxy rewrites them before they go anywhere), and pods may reach only 198.18.0.0/15.
ip route add "$SERVICE_CIDR" dev "$BRIDGE" src "$NODE_IP"
iptables -N WCA-NODE-EGRESS
iptables -A WCA-NODE-EGRESS -d 198.18.0.0/15 -j RETURN
iptables -A WCA-NODE-EGRESS -j REJECT --reject-with icmp-net-unreachable
iptables -I FORWARD 1 -s "$POD_CIDR" -j WCA-NODE-EGRESS
mkdir -p "$dir/cni/net.d" "$dir/cni/ipam"
render "$here/config/10-bridge.conflist" >"$dir/cni/net.d/10-bridge.conflist"

# 2. containerd and the images.
render "$here/config/containerd.toml" >"$dir/containerd.toml"
start containerd containerd --config "$dir/containerd.toml"
ctr() { command ctr -a "$dir/containerd/containerd.sock" -n k8s.io "$@"; }
until ctr version >/dev/null 2>&1; do
  kill -0 "${pids[-1]}" 2>/dev/null || { tail -20 "$dir/containerd.log" >&2; exit 1; }
  sleep 0.1
done
for image in "$bin"/images/*.tar "${images[@]}"; do
  ctr images import "$image" >/dev/null
done
log "containerd up; images: $(ctr images ls -q | grep -v '^sha256:' | tr '\n' ' ')"

# 3. etcd + kube-apiserver on the bridge address, so pods reach it through the `kubernetes`
#    Service (the endpoint reconciler is on); ServiceAccount admission on, so pods get tokens.
cp_pki "$dir" "IP:$NODE_IP" IP:127.0.0.1 IP:198.19.0.1 DNS:localhost DNS:kubernetes \
  DNS:kubernetes.default DNS:kubernetes.default.svc DNS:kubernetes.default.svc.cluster.local
cp_start_etcd "$dir" "$dir/etcd"
echo "${pids[-1]} etcd" >>"$dir/pids"
cp_start_apiserver "$dir" "$NODE_IP" "$SERVICE_CIDR" --kubelet-preferred-address-types InternalIP \
  --enable-admission-plugins OwnerReferencesPermissionEnforcement
echo "${pids[-1]} apiserver" >>"$dir/pids"
cp_wait_ready "$dir"
kubeconfig="$dir/kubeconfig"
kubectl() { "$bin/kubectl" --kubeconfig "$kubeconfig" "$@"; }
log "kube-apiserver ready at $api_url"

# 4. Controller manager and scheduler: the admin kubeconfig, no serving ports.
common=(--kubeconfig "$kubeconfig" --authentication-kubeconfig "$kubeconfig"
  --authorization-kubeconfig "$kubeconfig" --leader-elect=false --secure-port 0)
start kube-controller-manager "$bin/kube-controller-manager" "${common[@]}" --controllers='*' \
  --use-service-account-credentials --service-account-private-key-file "$dir/sa.key" \
  --root-ca-file "$dir/ca.crt" --cluster-signing-cert-file "$dir/ca.crt" \
  --cluster-signing-key-file "$dir/ca.key" --service-cluster-ip-range "$SERVICE_CIDR" \
  --flex-volume-plugin-dir "$dir/volume-plugins"
start kube-scheduler "$bin/kube-scheduler" "${common[@]}"

# 5. kubelet. Pods outside the cluster DNS (dnsPolicy Default) get this resolv.conf: no
#    upstream resolver, so no name ever resolves off the machine.
mkdir -p "$dir/kubelet" "$dir/pod-logs" "$dir/volume-plugins"
echo "nameserver 127.0.0.1" >"$dir/resolv.conf"
render "$here/config/kubelet.yaml" >"$dir/kubelet.yaml"
start kubelet "$bin/kubelet" --config "$dir/kubelet.yaml" --kubeconfig "$kubeconfig" \
  --root-dir "$dir/kubelet" --cert-dir "$dir/kubelet/pki" --node-ip "$NODE_IP" \
  --hostname-override "$NODE_NAME" --v=1

# 6. kube-proxy, iptables mode; it changes no conntrack, OOM or route_localnet setting.
start kube-proxy "$bin/kube-proxy" --kubeconfig "$kubeconfig" --proxy-mode iptables \
  --cluster-cidr "$POD_CIDR" --hostname-override "$NODE_NAME" --oom-score-adj 0 \
  --conntrack-max-per-core 0 --conntrack-tcp-timeout-established 0 \
  --conntrack-tcp-timeout-close-wait 0 --iptables-localhost-nodeports=false \
  --nodeport-addresses "$NODE_IP/32" --healthz-bind-address "127.0.0.1:$(free_port)" \
  --metrics-bind-address ""

# The Gateway API CRDs, while the kubelet registers: established before Traefik starts (step 7),
# whose Gateway API provider would otherwise retry the absent kinds with a backoff up to 30 s.
kubectl apply --server-side -f "$gateway_crds" >/dev/null
kubectl wait --for condition=established --timeout=60s -f "$gateway_crds" >/dev/null

alive_or_fail() {
  local pid name
  while read -r pid name; do
    kill -0 "$pid" 2>/dev/null || { echo "$name exited; its log:" >&2; tail -n 30 "$dir/$name.log" >&2 2>/dev/null; exit 1; }
  done <"$dir/pids"
}
until [ "$(kubectl get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ]; do
  alive_or_fail
  [ $((SECONDS - t0)) -gt 300 ] && { echo "node not Ready after 300 s" >&2; exit 1; }
  sleep 0.3
done
log "node $NODE_NAME Ready"

# 7. Cluster add-ons: CoreDNS and Traefik, as pods.
until kubectl get serviceaccount default >/dev/null 2>&1; do alive_or_fail; sleep 0.2; done
for addon in coredns traefik; do render "$here/addons/$addon.yaml"; echo "---"; done |
  kubectl apply --server-side -f - >/dev/null
kubectl -n kube-system rollout status deployment/coredns --timeout=180s >/dev/null
kubectl -n traefik rollout status deployment/traefik --timeout=180s >/dev/null
# The externalIP rules are kube-proxy's, a moment after the endpoints: wait until they route.
until [ "$(curl -s -o /dev/null -w '%{http_code}' "http://$NODE_IP/" 2>/dev/null)" = 404 ]; do
  alive_or_fail
  [ $((SECONDS - t0)) -gt 300 ] && { echo "ingress not reachable at $NODE_IP:80" >&2; exit 1; }
  sleep 0.2
done
# Traefik marks the Gateway Programmed once its Gateway API provider has synced.
kubectl -n traefik wait gateway/public --for condition=Programmed --timeout=120s >/dev/null
log "cluster DNS at $DNS_IP, ingress controller at $NODE_IP:80/443, Gateway traefik/public; ready"

echo "SUPERVISOR=$$"
echo "PIDS=$(cut -d' ' -f1 "$dir/pids" | tr '\n' ' ')"
echo "DIR=$dir"
echo "NODE_IP=$NODE_IP"
echo "INGRESS_IP=$NODE_IP"
echo "KUBECONFIG=$kubeconfig"
# The harness stops reading here: from now on write only to stderr (a closed stdout would kill
# this script with SIGPIPE in the middle of its teardown).
exec 1>&2

if [ "$mode" = "--until-stdin-closes" ]; then
  cat <&0 >/dev/null 9>&- &  # in the background so a TERM or INT runs the cleanup trap at once
  wait "$!" || true
else
  echo "export KUBECONFIG=$kubeconfig   # in another shell; Ctrl-C here tears the node down" >&2
  while :; do alive_or_fail; sleep 1; done
fi
