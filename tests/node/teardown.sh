# Sourced by tests/node/up.sh: what the node changes on the host, and how to undo it.
# node_teardown DIR works from what DIR records (pids, baseline), so it also cleans up after a
# node whose supervisor was killed (up.sh runs it on every stale /tmp/wca-node.* first).

# Sysctls the kubelet (kernel.*, vm.*) and the CNI bridge plugin (forwarding) may set.
NODE_SYSCTLS="kernel.panic kernel.panic_on_oops kernel.keys.root_maxkeys kernel.keys.root_maxbytes
  vm.overcommit_memory vm.panic_on_oom net.ipv4.conf.all.route_localnet
  net.ipv4.ip_forward net.ipv4.conf.all.forwarding net.ipv4.conf.default.forwarding
  net.ipv6.conf.all.forwarding net.ipv6.conf.default.forwarding
  net.bridge.bridge-nf-call-iptables net.bridge.bridge-nf-call-ip6tables"
# Fixed host paths that containerd 1.6 (shim sockets), libcni (result cache) and the kubelet
# (device plugins, container log links) create whatever their configured directories are.
NODE_HOST_DIRS="/run/containerd /var/lib/cni /var/lib/kubelet /var/log/containers /var/log/pods
  /usr/libexec/kubernetes /var/run/kubernetes /etc/kubernetes /var/lib/containerd /opt/containerd
  /run/netns /etc/cni /opt/cni"

# _node_stop PID [seconds]: TERM, then KILL after the grace period.
_node_stop() {
  local pid=$1 grace=${2:-5} i
  kill "$pid" 2>/dev/null || return 0
  for ((i = 0; i < grace * 10; i++)); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
}

# _node_pids DIR NAME...: recorded pids of these components that still belong to DIR.
_node_pids() {
  local dir=$1 pid name; shift
  [ -s "$dir/pids" ] || return 0
  while read -r pid name; do
    [[ " $* " == *" $name "* ]] || continue
    # The pid may have been reused since a killed run: only ours mention the work dir.
    tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -qF "$dir" && echo "$pid"
  done <"$dir/pids"
}

node_teardown() {
  # Best effort, every step: a step that fails must not stop the others (the caller may run
  # with errexit, and this runs from its EXIT trap).
  local errexit=false
  case $- in *e*) errexit=true; set +e ;; esac
  local dir=$1 pid ipt table chain rule t h
  # 1. The node agents first, so nothing restarts what follows.
  for pid in $(_node_pids "$dir" kube-proxy kubelet kube-scheduler kube-controller-manager); do _node_stop "$pid"; done
  # 2. Every container and sandbox, through containerd; then containerd and its shims.
  local sock="$dir/containerd/containerd.sock"
  if [ -S "$sock" ] && ctr -a "$sock" version >/dev/null 2>&1; then
    local c="ctr -a $sock -n k8s.io"
    for t in $($c tasks ls -q 2>/dev/null); do $c tasks kill -s KILL "$t" >/dev/null 2>&1 || true; done
    for t in $($c tasks ls -q 2>/dev/null); do $c tasks rm -f "$t" >/dev/null 2>&1 || true; done
    for t in $($c containers ls -q 2>/dev/null); do $c containers rm "$t" >/dev/null 2>&1 || true; done
  fi
  for pid in $(_node_pids "$dir" containerd); do _node_stop "$pid"; done
  for pid in $(pgrep -f "containerd-shim.*-address $sock" 2>/dev/null); do _node_stop "$pid" 2; done
  # Anything still in a pod cgroup (a container whose shim died first).
  for h in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods; do
    [ -d "$h" ] && find "$h" -name cgroup.procs -exec cat {} + 2>/dev/null | xargs -r kill -9 2>/dev/null
  done
  # 3. The control plane: the API server before etcd, which otherwise waits for its client.
  for pid in $(_node_pids "$dir" apiserver); do _node_stop "$pid" 2; done
  for pid in $(_node_pids "$dir" etcd); do _node_stop "$pid" 2; done
  # 4. Mounts under the work dir (overlay rootfs, sandbox shm, network namespaces, volumes),
  #    deepest first.
  findmnt -rn -o TARGET | grep -F "$dir/" | sort -r | while read -r m; do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
  done
  # 5. iptables chains of the kubelet and kube-proxy (KUBE-*) and up.sh's own (WCA-NODE-*),
  #    both families, every table: jumps into them first, then flush, then delete.
  for ipt in iptables ip6tables; do
    command -v $ipt >/dev/null || continue
    for table in filter nat mangle raw; do
      $ipt -t $table -S 2>/dev/null | grep -E '^-A .*-j (KUBE|WCA-NODE)-' | grep -vE '^-A (KUBE|WCA-NODE)-' |
        sed 's/^-A/-D/' | while read -r rule; do eval "$ipt -t $table $rule" 2>/dev/null || true; done
      for chain in $($ipt -t $table -S 2>/dev/null | awk '/^-N (KUBE|WCA-NODE)-/{print $2}'); do $ipt -t $table -F "$chain" 2>/dev/null || true; done
      for chain in $($ipt -t $table -S 2>/dev/null | awk '/^-N (KUBE|WCA-NODE)-/{print $2}'); do $ipt -t $table -X "$chain" 2>/dev/null || true; done
    done
  done
  # 6. nftables tables that iptables-nft (or kube-proxy) created and that are now empty.
  if command -v nft >/dev/null; then
    nft list tables 2>/dev/null | while read -r _ family name; do
      grep -qx "table $family $name" "$dir/baseline/nft-tables" 2>/dev/null && continue
      [ "$(nft list table "$family" "$name" | grep -cvE '^\s*(table |chain |type |policy |}|$)')" = 0 ] &&
        nft delete table "$family" "$name" 2>/dev/null
    done
  fi
  # 7. The kubelet's pod cgroups, in every hierarchy.
  for h in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods; do
    [ -d "$h" ] && find "$h" -depth -type d -exec rmdir {} + 2>/dev/null
  done
  # 8. Interfaces: the pods' veths (gone with their namespaces, normally) and the bridge.
  for t in $(ip -o link show master wca0 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1); do ip link del "$t" 2>/dev/null; done
  ip link del wca0 2>/dev/null || true
  # 9. Sysctls and host directories, as they were.
  [ -s "$dir/baseline/sysctl.conf" ] && sysctl -q -p "$dir/baseline/sysctl.conf" >/dev/null 2>&1
  [ -s "$dir/baseline/created-dirs" ] && while read -r t; do rm -rf "$t"; done <"$dir/baseline/created-dirs"
  rm -rf "$dir"
  if $errexit; then set -e; fi
  return 0
}
