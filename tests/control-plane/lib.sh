# Shared by tests/control-plane/up.sh (API server only) and tests/node/up.sh (a real node):
# certificates, etcd, kube-apiserver, the admin kubeconfig. Source it; every function takes the
# cluster's directory and records the processes it starts in the caller's `pids` array. Those
# processes do not inherit fd 9 (the node's lock).

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# cp_pki DIR SAN...: a throwaway CA, a serving certificate for the SANs (IP:... / DNS:...),
# a ServiceAccount signing key, and an admin token (DIR/tokens.csv, DIR/admin-token).
cp_pki() {
  local dir=$1; shift
  local sans; sans=$(IFS=,; echo "$*")
  (
    cd "$dir"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=wca-test-ca" \
      -keyout ca.key -out ca.crt 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=kube-apiserver" -keyout apiserver.key -out apiserver.csr 2>/dev/null
    printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\n' "$sans" >san.ext
    openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
      -extfile san.ext -out apiserver.crt 2>/dev/null
    openssl genrsa -out sa.key 2048 2>/dev/null
    openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
    python3 -c 'import secrets; print(secrets.token_hex(24))' >admin-token
    echo "$(cat admin-token),wca-admin,wca-admin,system:masters" >tokens.csv
  )
}

# cp_spawn DIR NAME: starts process NAME from its recorded command line (`cp_argv_NAME`), its
# output appended to DIR/NAME.log; records its pid in `pids` and in `cp_pid_NAME`. The command
# line is kept so that a test can kill a process and start it again, same ports and data.
cp_spawn() {
  local dir=$1 name=$2 argv
  argv="cp_argv_${name//-/_}[@]"
  "${!argv}" >>"$dir/$name.log" 2>&1 9>&- &
  pids+=($!)
  printf -v "cp_pid_${name//-/_}" '%s' "$!"
}

# cp_start_etcd DIR DATA_DIR: etcd on free loopback ports; sets etcd_url.
cp_start_etcd() {
  local dir=$1 data=$2 client peer
  client=$(free_port); peer=$(free_port)
  etcd_url="http://127.0.0.1:$client"
  cp_argv_etcd=("$bin/etcd" --name default --data-dir "$data"
    --listen-client-urls "$etcd_url" --advertise-client-urls "$etcd_url"
    --listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer"
    --initial-cluster "default=http://127.0.0.1:$peer" --unsafe-no-fsync --log-level error)
  cp_spawn "$dir" etcd
}

# cp_start_apiserver DIR ADDRESS SERVICE_CIDR [extra flags...]: kube-apiserver on ADDRESS and a
# free port (RBAC, the admin token, ServiceAccount tokens, an audit log of ServiceAccount
# requests); sets api_url. Named `$cp_apiserver` (default `apiserver`): its log, audit log and
# kubeconfig are DIR/NAME.log, DIR/audit.log (DIR/NAME-audit.log for another name) and
# DIR/kubeconfig (DIR/NAME.kubeconfig), so a second API server on the same etcd can run beside.
cp_start_apiserver() {
  local dir=$1 address=$2 service_cidr=$3 port name=${cp_apiserver:-apiserver} audit kubeconfig
  shift 3
  port=$(free_port)
  api_url="https://$address:$port"
  audit="$dir/audit.log"; kubeconfig="$dir/kubeconfig"
  if [ "$name" != apiserver ]; then audit="$dir/$name-audit.log"; kubeconfig="$dir/$name.kubeconfig"; fi
  local argv=("$bin/${cp_apiserver_binary:-kube-apiserver}" --etcd-servers "$etcd_url"
    --bind-address "$address" --secure-port "$port" --advertise-address "$address"
    --tls-cert-file "$dir/apiserver.crt" --tls-private-key-file "$dir/apiserver.key"
    --token-auth-file "$dir/tokens.csv" --client-ca-file "$dir/ca.crt"
    --service-account-issuer https://kubernetes.default.svc.cluster.local
    --service-account-signing-key-file "$dir/sa.key" --service-account-key-file "$dir/sa.pub"
    --service-cluster-ip-range "$service_cidr" --authorization-mode RBAC --allow-privileged
    --audit-policy-file "$cp_lib_dir/audit-policy.yaml" --audit-log-path "$audit" "$@")
  eval "cp_argv_${name//-/_}=(\"\${argv[@]}\")"
  cp_spawn "$dir" "$name"
  cat >"$kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters:
- name: wca-local
  cluster:
    server: $api_url
    certificate-authority: $dir/ca.crt
users:
- name: wca-admin
  user:
    token: $(cat "$dir/admin-token")
contexts:
- name: wca-local
  context: {cluster: wca-local, user: wca-admin, namespace: default}
current-context: wca-local
KC
}

# cp_wait_ready DIR: until /readyz answers; fails with the logs if a process died or 120 s passed.
cp_wait_ready() {
  local dir=$1 start=$SECONDS p
  until curl -sf --cacert "$dir/ca.crt" -H "Authorization: Bearer $(cat "$dir/admin-token")" \
    "$api_url/readyz" >/dev/null 2>&1; do
    for p in "${pids[@]}"; do
      if ! kill -0 "$p" 2>/dev/null; then
        echo "control plane failed to start; logs:" >&2
        tail -n 30 "$dir/etcd.log" "$dir/apiserver.log" >&2
        return 1
      fi
    done
    if [ $((SECONDS - start)) -gt 120 ]; then echo "apiserver not ready after 120 s" >&2; tail -n 30 "$dir/apiserver.log" >&2; return 1; fi
    sleep 0.2
  done
}

cp_lib_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
