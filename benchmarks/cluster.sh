#!/usr/bin/env bash
# flash-cluster against nginx as a reverse proxy, side by side, and the cost of the hop.
#
# Two copies of server 04 run on CPU 1. In front of the same two copies: flash-cluster
# (`--upstream` twice, `--threads 1`: one reactor and the proxy loop) and nginx (one worker,
# `least_conn`, `keepalive 64` to the copies, HTTP/1.1 upstream), both pinned to CPU 0, as
# `flash-load compare --pin` pins a server. flash-load (one thread) runs on CPU 1 beside the
# copies. For each of RUNS rounds, interleaved: nginx, the cluster, and one copy called directly,
# closed loop (64 connections, DUR), open loop (RATE requests/s over 64 connections, DUR), and a
# light open loop (1,000 requests/s over 4 connections: no queueing anywhere, so the difference
# from calling the copy directly is the hop itself).
# Before each measurement the load average and the busiest processes are saved, because the
# machine is shared.
#
#   benchmarks/cluster.sh [RUNS] [DUR] [RATE]      (defaults: 5 rounds, 10s, 10000 req/s)
#
# Writes every flash-load --json and the snapshots into OUT (default target/cluster-bench) and
# prints a Markdown table: medians, the proxy's CPU (cores used, requests per CPU-second), and
# the ratios cluster / nginx. Everything started here is stopped by its own pid.
set -uo pipefail
cd "$(dirname "$0")/.."
RUNS="${1:-5}"
DUR="${2:-10s}"
RATE="${3:-10000}"
OUT="${OUT:-target/cluster-bench}"
mkdir -p "$OUT/nginx"
OUT=$(cd "$OUT" && pwd)
ulimit -n "$(ulimit -Hn)"
cargo build --release -q -p flash-cluster -p flash-04-epoll -p flash-load || exit 1
R=target/release

PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done; wait 2>/dev/null; }
trap cleanup EXIT
wait_for() { for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$1/hello" >/dev/null 2>&1 && return 0; sleep 0.1; done; echo "nothing answers on $1" >&2; exit 1; }

for port in 19001 19002; do
  taskset -c 1 $R/flash-04-epoll --port $port --quiet --results-dir "$OUT/results-$port" >/dev/null 2>&1 &
  PIDS+=($!)
  wait_for $port
done
COPY_PID=${PIDS[0]}

cat > "$OUT/nginx/nginx.conf" <<EOF
worker_processes 1;
daemon off;
error_log $OUT/nginx/error.log warn;
pid $OUT/nginx/nginx.pid;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $OUT/nginx/body;
    proxy_temp_path $OUT/nginx/proxy;
    fastcgi_temp_path $OUT/nginx/fastcgi;
    uwsgi_temp_path $OUT/nginx/uwsgi;
    scgi_temp_path $OUT/nginx/scgi;
    keepalive_requests 100000000;
    keepalive_timeout 65s;
    upstream copies {
        least_conn;
        server 127.0.0.1:19001;
        server 127.0.0.1:19002;
        keepalive 64;
        keepalive_requests 100000000;
    }
    server {
        listen 127.0.0.1:18082;
        location / {
            proxy_pass http://copies;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
EOF
taskset -c 0 /usr/sbin/nginx -c "$OUT/nginx/nginx.conf" >/dev/null 2>&1 &
PIDS+=($!)
wait_for 18082
NGINX_PID=$(pgrep -P "${PIDS[-1]}" | head -1)

taskset -c 0 $R/flash-cluster --port 18081 --threads 1 --quiet \
  --upstream http://127.0.0.1:19001 --upstream http://127.0.0.1:19002 >/dev/null 2>"$OUT/cluster-stderr.log" &
PIDS+=($!)
CLUSTER_PID=$!
wait_for 18081

declare -A PORT=([nginx]=18082 [cluster]=18081 [direct]=19001)
declare -A PID=([nginx]=$NGINX_PID [cluster]=$CLUSTER_PID [direct]=$COPY_PID)
for run in $(seq "$RUNS"); do
  for who in nginx cluster direct; do
    for mode in closed open light; do
      f="$OUT/$who-$mode-run$run"
      { date -Is; cat /proc/loadavg; ps -eo pcpu,psr,ni,comm --sort=-pcpu | head -8; } > "$f.machine.txt"
      args=(-d "$DUR" --server-pid "${PID[$who]}" --json "$f.json")
      case "$mode" in
        closed) args+=(-c 64) ;;
        open) args+=(-c 64 --rate "$RATE") ;;
        light) args+=(-c 4 --rate 1000) ;;
      esac
      taskset -c 1 $R/flash-load "http://127.0.0.1:${PORT[$who]}/hello" "${args[@]}" > "$f.txt" 2>&1
    done
  done
done

python3 - "$OUT" "$RUNS" "$DUR" "$RATE" <<'EOF'
import json, statistics, sys
out, runs, dur, rate = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
def load(who, mode):
    rows = []
    for run in range(1, runs + 1):
        r = json.load(open(f"{out}/{who}-{mode}-run{run}.json"))["result"]
        cpu = r["cpu"].get("server_cpu_seconds") or 0.0
        rows.append(dict(rps=r["requests_per_sec"], p50=r["latency"]["p50_us"], p99=r["latency"]["p99_us"],
                         cores=r["cpu"].get("server_cores") or 0.0, per_cpu_s=r["requests"] / cpu if cpu else 0.0,
                         errors=sum(r["errors"].values())))
    return {k: statistics.median(row[k] for row in rows) for k in rows[0]} | {"all_rps": [round(x["rps"]) for x in rows]}
res = {(who, mode): load(who, mode) for who in ("nginx", "cluster", "direct") for mode in ("closed", "open", "light")}
print(f"\n### /hello, 2 copies of 04 (median of {runs} interleaved rounds of {dur}; proxies on CPU 0, copies and flash-load on CPU 1)\n")
print("| target | closed loop c64, req/s | p50 | p99 | proxy cores | req per proxy CPU-s | open loop "
      f"{rate}/s: p50 | p99 | 1,000/s: p50 | p99 | errors | every round, req/s |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
for who, name in (("nginx", "nginx 1 worker"), ("cluster", "flash-cluster --threads 1"), ("direct", "one copy, direct")):
    c, o, l = res[(who, "closed")], res[(who, "open")], res[(who, "light")]
    print(f"| {name} | {c['rps']:,.0f} | {c['p50']:,.0f} µs | {c['p99']:,.0f} µs | {c['cores']:.2f} | {c['per_cpu_s']:,.0f} | "
          f"{o['p50']:,.0f} µs | {o['p99']:,.0f} µs | {l['p50']:,.0f} µs | {l['p99']:,.0f} µs | "
          f"{c['errors'] + o['errors'] + l['errors']:.0f} | {c['all_rps']} |")
c, n = res[("cluster", "closed")], res[("nginx", "closed")]
oc, on = res[("cluster", "open")], res[("nginx", "open")]
lc, ln, ld = res[("cluster", "light")], res[("nginx", "light")], res[("direct", "light")]
print(f"\ncluster / nginx: req/s {c['rps'] / n['rps']:.2f}x, closed-loop p99 {c['p99'] / n['p99']:.2f}x, "
      f"req per proxy CPU-second {c['per_cpu_s'] / n['per_cpu_s']:.2f}x, open-loop p99 {oc['p99'] / on['p99']:.2f}x")
print(f"the hop at 1,000/s: p50 {ld['p50']:,.0f} µs direct, {lc['p50']:,.0f} µs through the cluster "
      f"(+{lc['p50'] - ld['p50']:,.0f} µs), {ln['p50']:,.0f} µs through nginx (+{ln['p50'] - ld['p50']:,.0f} µs); "
      f"p99 {ld['p99']:,.0f} / {lc['p99']:,.0f} / {ln['p99']:,.0f} µs")
print(f"proxy CPU per request: cluster {1e6 / c['per_cpu_s']:.1f} µs, nginx {1e6 / n['per_cpu_s']:.1f} µs; "
      f"a copy answering directly {1e6 / res[('direct', 'closed')]['per_cpu_s']:.1f} µs")
EOF
