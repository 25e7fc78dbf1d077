#!/usr/bin/env bash
# The demo (README's first command): a real single-node Kubernetes cluster on this machine, the
# operator installed from its Helm chart and running as a pod, a fake WorkOS in the cluster, and
# three example resources. Then the JWKS fetched through the ingress controller as Convex
# would fetch it, the generated convex/auth.config.ts, and a fourth resource syncing its
# variables to a FAKE Convex deployment (tests/fake-convex). Offline; needs root.
#   bash examples/demo.sh          run, print, tear everything down
#   bash examples/demo.sh --keep   leave the cluster running (Ctrl-C ends it)
set -euo pipefail
cd "$(dirname "$0")/.."
keep=${1:-}
began=$SECONDS
say() { printf '\n\033[1m==> %s\033[0m   [%ss]\n' "$*" "$((SECONDS - began))"; }
CLIENT=client_01JEXAMPLE0000000000000000
FAKE_UPSTREAM=http://fake-workos.workos-fake.svc.cluster.local

say "building the cluster's binaries and the images (cached after the first run)"
bin=$(bash tests/control-plane/install.sh --node | tail -n 1)
export WCA_CONTROL_PLANE_BIN=$bin PATH="$bin:$PATH"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-${WCA_CACHE:-$HOME/.cache/workos-convex-auth}/target}
mapfile -t images < <(bash image/build.sh)
[ ${#images[@]} -eq 2 ] || { echo "image/build.sh failed" >&2; exit 1; }

say "starting a single-node cluster: etcd, kube-apiserver, controller-manager, scheduler, kubelet, kube-proxy, containerd, CoreDNS, Traefik (tests/node/up.sh)"
# up.sh runs until its stdin closes; this script holds the only write end (fd 3), so the
# cluster goes away with it, however it ends.
fifo=$(mktemp -u) && mkfifo "$fifo"
out=$(mktemp)
work=$(mktemp -d)
bash tests/node/up.sh --until-stdin-closes --image "${images[0]}" --image "${images[1]}" <"$fifo" >"$out" &
exec 3>"$fifo"
rm -f "$fifo"
trap 'exec 3>&-; wait; rm -rf "$out" "$work"' EXIT
until grep -q '^KUBECONFIG=' "$out"; do
  kill -0 $! 2>/dev/null || { echo "the node did not start" >&2; exit 1; }
  sleep 0.2
done
export KUBECONFIG=$(sed -n 's/^KUBECONFIG=//p' "$out")
ingress_ip=$(sed -n 's/^INGRESS_IP=//p' "$out")
node_ip=$(sed -n 's/^NODE_IP=//p' "$out")
kubectl get nodes -o wide
kubectl get pods -A

say "helm install wca charts/workos-convex-auth -n wca-system --create-namespace  (the image built here; never pulled)"
installing=$SECONDS
helm install wca charts/workos-convex-auth -n wca-system --create-namespace \
  --set image.repository=wca.local/workos-convex-auth --set image.tag=dev --set image.pullPolicy=Never \
  --set policy.upstream.allowHttp=true --set 'policy.upstream.allowedHosts={fake-workos.workos-fake.svc.cluster.local}' \
  --set policy.convex.allowHttp=true --set "policy.convex.allowedNetworks={$node_ip/32}" --set "policy.convex.allowedHosts={$node_ip}" \
  --wait --timeout 180s
echo "    operator pod Ready $((SECONDS - installing)) s after helm install"
kubectl -n wca-system get pods -o wide

say "a fake WorkOS in the cluster: the tests' fake as a pod (tests/node/fake-workos.yaml)"
kubectl create namespace workos-fake >/dev/null
kubectl -n workos-fake create configmap fake-workos-keys --from-file=jwks.json=tests/fixtures/keys/jwks-rsa.json >/dev/null
kubectl -n workos-fake apply -f tests/node/fake-workos.yaml
kubectl -n workos-fake rollout status deployment/fake-workos --timeout=120s >/dev/null

say "a TLS certificate for jwks.acme.com (a throwaway CA), for the Ingress of acme-prod"
(
  cd "$work"
  openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=demo CA" -keyout ca.key -out ca.crt 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=jwks.acme.com" -keyout tls.key -out tls.csr 2>/dev/null
  printf 'subjectAltName=DNS:jwks.acme.com\n' >san.ext
  openssl x509 -req -in tls.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 1 -extfile san.ext -out tls.crt 2>/dev/null
)
kubectl create secret tls jwks-acme-com-tls --cert "$work/tls.crt" --key "$work/tls.key"

say "kubectl apply the examples, their upstream pointed at the fake WorkOS and the Ingress at the cluster's class"
# (`kubectl patch --local` prints each example with those fields changed, nothing else.)
upstream="{\"spec\":{\"jwks\":{\"upstreamBase\":\"$FAKE_UPSTREAM\"}}}"
kubectl patch --local -f examples/basic.yaml --type merge -p "$upstream" -o yaml | kubectl apply -f -
kubectl patch --local -f examples/custom-domain-ingress.yaml --type merge -p "$upstream" -o yaml |
  kubectl patch --local -f - --type merge -p '{"spec":{"ingress":{"className":"traefik"}}}' -o yaml | kubectl apply -f -
kubectl apply -f examples/direct-authkit.yaml
applied=$SECONDS
kubectl wait --for=condition=Ready wca --all --timeout=180s >/dev/null
echo "    all Ready $((SECONDS - applied)) s after kubectl apply"

say "kubectl get wca; the children"
kubectl get wca
echo
kubectl get deployment,pod,service,pdb,ingress,configmap -l app.kubernetes.io/managed-by=workos-convex-auth

say "the JWKS through the ingress controller, at the URL the config gives Convex"
url=$(kubectl get wca acme-prod -o jsonpath='{.status.jwksUrl}')
echo "    curl --resolve jwks.acme.com:443:$ingress_ip --cacert demo-ca.crt $url"
# Traefik routes a new Ingress a moment after its endpoints are ready (a 2 s throttle).
fetch() { curl -sS --resolve "jwks.acme.com:443:$ingress_ip" --cacert "$work/ca.crt" -D "$work/headers" -o "$work/body" -w '%{http_code}' "$url"; }
until [ "$(fetch)" = 200 ]; do
  [ $((SECONDS - applied)) -gt 120 ] && { echo "not served through the ingress after 120 s" >&2; exit 1; }
  sleep 0.2
done
echo "    served through the ingress $((SECONDS - applied)) s after kubectl apply"
grep -iE '^(HTTP|content-type|cache-control|etag)' "$work/headers" | sed 's/^/    /'
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print("    keys:", ", ".join(k["kid"]+" ("+k["kty"]+" "+k["alg"]+")" for k in d["keys"]))' "$work/body"

say "the generated convex/auth.config.ts of acme-prod (kubectl get configmap convex-auth -o jsonpath='{.data.auth\.config\.ts}')"
kubectl get configmap convex-auth -o jsonpath='{.data.auth\.config\.ts}'

say "status of acme-prod (kubectl get wca acme-prod -o jsonpath='{.status}')"
kubectl get wca acme-prod -o jsonpath='{.status}' | python3 -m json.tool

say "spec.convex against a FAKE Convex deployment (tests/fake-convex on the node's address $node_ip; NOT Convex)"
# No Convex backend runs here: this fake answers the admin API as convex-backend does and
# re-evaluates the pushed auth.config.js with node whenever a variable changes.
node tests/fake-convex/deployment.mjs --listen "$node_ip:0" --admin-key demo-admin-key >"$work/convex.out" &
fake_convex=$!
trap 'kill $fake_convex 2>/dev/null; exec 3>&-; wait; rm -rf "$out" "$work"' EXIT
until grep -q '^listening ' "$work/convex.out"; do sleep 0.1; done
convex_url=$(sed -n 's/^listening //p' "$work/convex.out")
echo "    fake Convex deployment at $convex_url"
kubectl create secret generic convex-admin --from-literal=adminKey=demo-admin-key
# The operator sends the key only to the deployment its Secret names.
kubectl annotate secret convex-admin "workos-convex.io/convex-url=$convex_url"
kubectl patch --local -f examples/convex-sync.yaml --type merge \
  -p "{\"metadata\":{\"namespace\":\"default\"},\"spec\":{\"jwks\":{\"upstreamBase\":\"$FAKE_UPSTREAM\"},\"convex\":{\"url\":\"$convex_url\"}}}" -o yaml | kubectl apply -f -
synced=$SECONDS
kubectl wait --for=jsonpath='{.status.conditions[?(@.type=="ConvexSynced")].reason}'=AuthConfigNotPushed wca/acme-synced --timeout=120s >/dev/null
echo "    variables set $((SECONDS - synced)) s after kubectl apply; ConvexSynced says:"
kubectl get wca acme-synced -o jsonpath='{.status.conditions[?(@.type=="ConvexSynced")].message}' | fold -s -w 100 | sed 's/^/      /'
echo
echo "    the one push (what npx convex deploy does), to the FAKE deployment:"
kubectl get configmap acme-synced-convex-auth -o jsonpath='{.data.auth\.config\.js}' >"$work/auth.config.js"
curl -sS -o /dev/null -w '      POST /_fake/push: %{http_code}\n' -H 'authorization: Convex demo-admin-key' --data-binary @"$work/auth.config.js" "$convex_url/_fake/push"
kubectl wait --for=condition=ConvexSynced wca/acme-synced --timeout=120s >/dev/null
echo "    ConvexSynced=True $((SECONDS - synced)) s after kubectl apply:"
kubectl get wca acme-synced -o jsonpath='{.status.conditions[?(@.type=="ConvexSynced")].message}' | sed 's/^/      /'
echo
curl -sS "$convex_url/_fake/state" | python3 -c '
import json, sys
s = json.load(sys.stdin)
print("    the FAKE deployment holds:", ", ".join(f"{k}={v[:48]}…" if len(v) > 48 else f"{k}={v}" for k, v in sorted(s["env"].items())))
print("    its re-evaluated providers:", "; ".join(p["issuer"] for p in s["providers"]))
print("    requests it answered:", s["requests"])'

cat <<TXT

To use the config: write .data["auth.config.ts"] to convex/auth.config.ts and run npx convex deploy.
The demo took $((SECONDS - began)) s.
TXT
if [ "$keep" = "--keep" ]; then
  echo; echo "export KUBECONFIG=$KUBECONFIG   # still running; Ctrl-C here tears it down"
  wait
fi
