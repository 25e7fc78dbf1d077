#!/usr/bin/env bash
# The demo (README's first command): a local control plane, the Helm chart (CRD + RBAC), the
# operator running as the chart's ServiceAccount, and three example resources; prints what the operator generated and the resources' status. Offline.
#   bash examples/demo.sh          run and tear everything down
#   bash examples/demo.sh --keep   leave the control plane and operator running (Ctrl-C ends)
set -euo pipefail
cd "$(dirname "$0")/.."
keep=${1:-}
say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

say "building workos-convex-auth and the control plane (cached after the first run)"
cargo build --quiet -p workos-convex-auth
bin=$(bash tests/control-plane/install.sh | tail -n 1)
export WCA_CONTROL_PLANE_BIN=$bin PATH="$bin:$PATH"

say "starting etcd + kube-apiserver (tests/control-plane/up.sh)"
# up.sh runs until its stdin closes; this script holds the only write end (fd 3), so the
# control plane goes away with it, however it ends.
fifo=$(mktemp -u) && mkfifo "$fifo"
out=$(mktemp)
bash tests/control-plane/up.sh --until-stdin-closes <"$fifo" >"$out" &
exec 3>"$fifo"
rm -f "$fifo"
operator_pid=""
operator_kubeconfig=""
trap '[ -n "$operator_pid" ] && kill "$operator_pid" 2>/dev/null; exec 3>&-; wait; rm -f "$out" "$operator_kubeconfig"' EXIT
until grep -q '^KUBECONFIG=' "$out"; do sleep 0.2; done
export KUBECONFIG=$(sed -n 's/^KUBECONFIG=//p' "$out")
kubectl version 2>/dev/null | sed 's/^/    /'

say "helm install wca charts/workos-convex-auth -n wca-system --create-namespace   (the CRD comes with the chart)"
helm install wca charts/workos-convex-auth -n wca-system --create-namespace --wait=hookOnly
kubectl wait --for condition=established crd/workosconvexauths.workos-convex.io >/dev/null

# No kubelet runs here, so the chart's operator Deployment cannot start a pod. Run the same
# binary locally instead, with the chart's ServiceAccount token: the chart's RBAC, for real.
say "starting the operator as the chart's ServiceAccount: workos-convex-auth run"
operator_kubeconfig=$(mktemp)
token=$(kubectl create token wca-workos-convex-auth -n wca-system)
sed "s|^    token: .*|    token: $token|" "$KUBECONFIG" >"$operator_kubeconfig"
admin_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
RUST_LOG=warn ./target/debug/workos-convex-auth run --kubeconfig "$operator_kubeconfig" \
  --admin-addr "127.0.0.1:$admin_port" --log-format text &
operator_pid=$!
until curl -sf "http://127.0.0.1:$admin_port/readyz" >/dev/null; do sleep 0.2; done
echo "    ready: http://127.0.0.1:$admin_port/readyz"

say "kubectl apply -f examples/basic.yaml -f examples/custom-domain-ingress.yaml -f examples/direct-authkit.yaml"
kubectl apply -f examples/basic.yaml -f examples/custom-domain-ingress.yaml -f examples/direct-authkit.yaml
for cm in acme-convex-auth convex-auth acme-staging-convex-auth; do
  until kubectl get configmap "$cm" >/dev/null 2>&1; do sleep 0.1; done
done
kubectl wait --for=jsonpath='{.status.observedGeneration}'=1 wca --all >/dev/null

say "kubectl get wca,configmap,deployment,service,pdb,ingress"
kubectl get wca
echo
kubectl get configmap,deployment,service,pdb,ingress -l app.kubernetes.io/managed-by=workos-convex-auth

say "the generated convex/auth.config.ts of acme-prod (kubectl get configmap convex-auth -o jsonpath='{.data.auth\.config\.ts}')"
kubectl get configmap convex-auth -o jsonpath='{.data.auth\.config\.ts}'

say "status of acme-prod (kubectl get wca acme-prod -o jsonpath='{.status}')"
kubectl get wca acme-prod -o jsonpath='{.status}' | python3 -m json.tool

cat <<TXT

No kubelet runs on this local control plane, so the mirror's pods never start: ProxyAvailable is
honestly False here, and Ready with it; acme-staging (mode Direct) needs no mirror and is Ready.
To use the config: write .data["auth.config.ts"] to convex/auth.config.ts and run npx convex deploy.
TXT
if [ "$keep" = "--keep" ]; then
  echo; echo "export KUBECONFIG=$KUBECONFIG   # still running; Ctrl-C here tears it down"
  wait "$operator_pid"
fi
