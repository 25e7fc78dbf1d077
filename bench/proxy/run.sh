#!/usr/bin/env bash
# JWKS mirror vs nginx, same bytes, same wrk settings, same run, loopback only.
#
#   bench/proxy/run.sh            # writes bench/proxy/results.md and the BENCHMARKS.md section
#
# Env: DURATION (default 10s), CONNECTIONS (64), THREADS (2), ROUNDS (2), PORT_BASE (18080).
# Installs wrk and nginx with apt-get when missing; builds the release binary (into
# $CARGO_TARGET_DIR when set, else target/).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
RELEASE="${CARGO_TARGET_DIR:-$ROOT/target}/release"
DURATION="${DURATION:-10s}"
CONNECTIONS="${CONNECTIONS:-64}"
THREADS="${THREADS:-2}"
ROUNDS="${ROUNDS:-2}"
PORT_BASE="${PORT_BASE:-18080}"
UPSTREAM_PORT=$PORT_BASE
MIRROR_PORT=$((PORT_BASE + 1))
NGINX_PORT=$((PORT_BASE + 2))
CLIENT_PATH=/sso/jwks/client_01BENCHCLIENT
WORK="$(mktemp -d /tmp/wca-bench.XXXXXX)"
PIDS=()

cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  if [[ -f "$WORK/nginx.pid" ]]; then kill "$(cat "$WORK/nginx.pid")" 2>/dev/null || true; fi
  wait 2>/dev/null || true
}
trap cleanup EXIT

need() { command -v "$1" >/dev/null 2>&1 || PATH="$PATH:/usr/sbin" command -v "$1" >/dev/null 2>&1; }
if ! need wrk || ! need nginx; then
  echo "installing wrk and nginx (Debian packages)" >&2
  sudo_cmd=""; [[ $(id -u) -ne 0 ]] && sudo_cmd="sudo"
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq wrk nginx >/dev/null
fi
NGINX="$(PATH="$PATH:/usr/sbin" command -v nginx)"

echo "building (release)" >&2
cd "$ROOT"
cargo build --release -q -p workos-convex-auth --bin workos-convex-auth
cargo build --release -q -p wca-test-harness --bin fake-workos
MIRROR_CMD=("$RELEASE/workos-convex-auth" proxy)
echo "mirror: ${MIRROR_CMD[*]}" >&2

wait_http() { # url
  for _ in $(seq 1 500); do curl -fsS -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.01; done
  echo "timed out waiting for $1" >&2; return 1
}

# Upstream first; it reports the time from its first JWKS answer to the mirror's /readyz = 200.
"$RELEASE/fake-workos" --listen "127.0.0.1:$UPSTREAM_PORT" \
  --jwks "$ROOT/tests/fixtures/keys/jwks-rsa.json" --report-ready "http://127.0.0.1:$MIRROR_PORT/readyz" >"$WORK/fake.out" 2>&1 &
PIDS+=($!)
wait_http "http://127.0.0.1:$UPSTREAM_PORT$CLIENT_PATH"

RUST_LOG=warn "${MIRROR_CMD[@]}" --listen "127.0.0.1:$MIRROR_PORT" \
  --mirror "$CLIENT_PATH=http://127.0.0.1:$UPSTREAM_PORT$CLIENT_PATH" --refresh 5m --max-stale 24h \
  --allow-http-upstream --allowed-upstream-network 127.0.0.0/8 \
  >"$WORK/mirror.log" 2>&1 &
MIRROR_PID=$!
PIDS+=($MIRROR_PID)
for _ in $(seq 1 500); do grep -q ready_after_first_answer_ms "$WORK/fake.out" && break; sleep 0.01; done
READY_MS="$(sed -n 's/^ready_after_first_answer_ms=//p' "$WORK/fake.out")"

# nginx serves the mirror's exact bytes as a static file, with the same headers.
mkdir -p "$WORK/www$(dirname $CLIENT_PATH)" "$WORK/logs"
curl -fsS "http://127.0.0.1:$MIRROR_PORT$CLIENT_PATH" -o "$WORK/www$CLIENT_PATH"
user_line=""; [[ $(id -u) -eq 0 ]] && user_line="user root;"
cat >"$WORK/nginx.conf" <<CONF
$user_line
worker_processes auto;
pid $WORK/nginx.pid;
error_log $WORK/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  tcp_nodelay on;
  keepalive_requests 10000000;
  keepalive_timeout 75s;
  open_file_cache max=16;
  open_file_cache_valid 60s;
  client_body_temp_path $WORK/tmp-body; proxy_temp_path $WORK/tmp-proxy;
  fastcgi_temp_path $WORK/tmp-fcgi; uwsgi_temp_path $WORK/tmp-uwsgi; scgi_temp_path $WORK/tmp-scgi;
  server {
    listen 127.0.0.1:$NGINX_PORT;
    root $WORK/www;
    location /sso/jwks/ {
      default_type application/json;
      add_header Cache-Control "public, max-age=300";
    }
  }
}
CONF
"$NGINX" -p "$WORK" -c "$WORK/nginx.conf"
wait_http "http://127.0.0.1:$NGINX_PORT$CLIENT_PATH"
cmp <(curl -fsS "http://127.0.0.1:$MIRROR_PORT$CLIENT_PATH") <(curl -fsS "http://127.0.0.1:$NGINX_PORT$CLIENT_PATH")
BYTES=$(stat -c %s "$WORK/www$CLIENT_PATH")

run_wrk() { # name url -> "rps p99_ms"
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$2" >"$WORK/wrk-$1.txt"
  local rps p99
  rps=$(awk '/^Requests\/sec:/ {print $2}' "$WORK/wrk-$1.txt")
  p99=$(awk '$1 == "99%" {v=$2; if (v ~ /us$/) {sub(/us$/,"",v); v=v/1000} else if (v ~ /ms$/) {sub(/ms$/,"",v)} else if (v ~ /s$/) {sub(/s$/,"",v); v=v*1000}; print v}' "$WORK/wrk-$1.txt")
  echo "$rps $p99"
}

echo "warming up" >&2
wrk -t"$THREADS" -c"$CONNECTIONS" -d2s "http://127.0.0.1:$NGINX_PORT$CLIENT_PATH" >/dev/null
wrk -t"$THREADS" -c"$CONNECTIONS" -d2s "http://127.0.0.1:$MIRROR_PORT$CLIENT_PATH" >/dev/null

ROWS=""
SUM_RATIO_RPS=0; SUM_RATIO_P99=0
for round in $(seq 1 "$ROUNDS"); do
  echo "round $round: nginx" >&2
  read -r N_RPS N_P99 < <(run_wrk "nginx-$round" "http://127.0.0.1:$NGINX_PORT$CLIENT_PATH")
  echo "round $round: mirror" >&2
  read -r M_RPS M_P99 < <(run_wrk "mirror-$round" "http://127.0.0.1:$MIRROR_PORT$CLIENT_PATH")
  R_RPS=$(awk -v m="$M_RPS" -v n="$N_RPS" 'BEGIN {printf "%.2f", m / n}')
  R_P99=$(awk -v m="$M_P99" -v n="$N_P99" 'BEGIN {printf "%.2f", m / n}')
  ROWS+="| $round | $N_RPS | $M_RPS | **${R_RPS}×** | $N_P99 | $M_P99 | **${R_P99}×** |"$'\n'
  SUM_RATIO_RPS=$(awk -v a="$SUM_RATIO_RPS" -v b="$R_RPS" 'BEGIN {print a + b}')
  SUM_RATIO_P99=$(awk -v a="$SUM_RATIO_P99" -v b="$R_P99" 'BEGIN {print a + b}')
done
MEAN_RPS=$(awk -v s="$SUM_RATIO_RPS" -v n="$ROUNDS" 'BEGIN {printf "%.2f", s / n}')
MEAN_P99=$(awk -v s="$SUM_RATIO_P99" -v n="$ROUNDS" 'BEGIN {printf "%.2f", s / n}')
HWM_KB=$(awk '/^VmHWM:/ {print $2}' "/proc/$MIRROR_PID/status")
RSS_MIB=$(awk -v k="$HWM_KB" 'BEGIN {printf "%.1f", k / 1024}')
NON_200=$(grep -h "Non-2xx" "$WORK"/wrk-mirror-*.txt || true)

ENV_LINE="$(nproc) CPU(s), $(uname -sr), $(wrk --version 2>&1 | head -1 | awk '{print $1, $2}'), nginx $("$NGINX" -v 2>&1 | sed 's/.*nginx\///'), $(date -u +%Y-%m-%d)"
cat >"$ROOT/bench/proxy/results.md" <<MD
## JWKS mirror vs nginx

Reproduce: \`bench/proxy/run.sh\` (installs \`wrk\` and \`nginx\` from Debian when missing, builds the
release binary, starts the fake WorkOS upstream, the mirror and nginx on loopback). Both servers
serve the same ${BYTES}-byte document (nginx: a static file holding the mirror's bytes, same
\`Content-Type\` and \`Cache-Control\`), measured with the same settings, alternating, in one run:
\`wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency\`, after a 2 s warm-up of each.
Machine: $ENV_LINE; wrk, nginx (\`worker_processes auto\`) and the mirror (one tokio worker per CPU)
share the CPUs, so absolute numbers are low and only the ratios carry over.

| round | nginx req/s | mirror req/s | mirror / nginx | nginx p99 ms | mirror p99 ms | mirror / nginx |
|---|---|---|---|---|---|---|
${ROWS}
| target | result |
|---|---|
| requests/s ≥ 1.0× nginx | mean ratio **${MEAN_RPS}×** |
| p99 latency ≤ nginx | mean ratio **${MEAN_P99}×** (lower is better) |
| mirror RSS ≤ 16 MiB under load | VmHWM **${RSS_MIB} MiB** |
| ready ≤ 50 ms after the first upstream answer | **${READY_MS} ms** (fake upstream's first answer → first \`/readyz\` 200, polled every 0.5 ms) |

${NON_200:+Mirror non-2xx answers during the run: $NON_200}
MD

python3 - "$ROOT/BENCHMARKS.md" "$ROOT/bench/proxy/results.md" <<'PY'
import re, sys
target, section = sys.argv[1], open(sys.argv[2]).read().rstrip() + "\n"
try:
    text = open(target).read()
except FileNotFoundError:
    text = "# Benchmarks\n\n"
pattern = re.compile(r"^## JWKS mirror vs nginx\n.*?(?=^## |\Z)", re.S | re.M)
if pattern.search(text):
    text = pattern.sub(lambda _: section + "\n", text, count=1)
else:
    text = text.rstrip() + "\n\n" + section
open(target, "w").write(text.rstrip() + "\n")
PY
cat "$ROOT/bench/proxy/results.md"
