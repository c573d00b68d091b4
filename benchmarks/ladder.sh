#!/usr/bin/env bash
# Side-by-side throughput of every Flash server and the reference peers on a 2-core machine: each
# server pinned to CPU 0, the load generator (one thread) pinned to CPU 1, median of RUNS runs of
# DUR each. Loopback only; every server started here is stopped by its own pid.
#
#   benchmarks/ladder.sh [RUNS] [DUR]        (defaults: 3 runs of 10s)
#   SERVERS="04-epoll 07-reactors hyper" SCENARIOS="c64" benchmarks/ladder.sh 1 3s
#
# Scenarios: c1 (one keep-alive connection), c64 (64), c64pipe16 (64, 16 pipelined per write), all
# with wrk; c64fl and c64pipe16fl are c64 and c64pipe16 with flash-load instead. Which one measures
# the server: the `server CPU` column is the share of its core the server used (utime + stime over
# the run). Below about 95% the server was waiting for the load generator, and the ratios between
# servers say more about the generator than about them: `wrk -t1` spends about 4.6 µs of its core
# per request, flash-load about 3.5 µs, so at 64 connections wrk is the bottleneck for any server
# faster than about 215,000 req/s on one core, and flash-load for one faster than about 280,000.
#
# Needs wrk (apt-get install wrk), and for the peers the binaries built by
# ../shared/peers/build.sh (PEERS_DIR, default /tmp/peers) and nginx. Writes raw output and a
# summary.tsv into OUT (default target/ladder), and prints a Markdown table with the ratios
# ours / hyper, ours / may_minihttp and ours / nginx.
set -uo pipefail
cd "$(dirname "$0")/.."
RUNS="${1:-3}"
DUR="${2:-10s}"
PEERS_DIR="${PEERS_DIR:-/tmp/peers}"
OUT="${OUT:-target/ladder}"
SERVERS="${SERVERS:-01-sequential 02-fork-exec-cgi 03-thread-per-request 04-epoll 05-threaded-epoll 06-worker-pool 07-reactors 08-io-uring hyper may nginx}"
SCENARIOS="${SCENARIOS:-c64 c64pipe16}"
mkdir -p "$OUT"
ulimit -n "$(ulimit -Hn)"
: > "$OUT/summary.tsv"

flash_bins=()
for s in $SERVERS; do [ -d "servers/$s" ] && flash_bins+=(-p "flash-$s"); done
[ ${#flash_bins[@]} -gt 0 ] && cargo build --release -q "${flash_bins[@]}"
case "$SCENARIOS" in *fl*) cargo build --release -q -p flash-load ;; esac

PID=""
start() { # name -> sets PORT and PID
  case "$1" in
    hyper) PORT=18081; PORT=$PORT taskset -c 0 "$PEERS_DIR/target/release/hyper-peer" >/dev/null 2>&1 & PID=$! ;;
    may) PORT=18082; PORT=$PORT taskset -c 0 "$PEERS_DIR/target/release/may-peer" >/dev/null 2>&1 & PID=$! ;;
    actix) PORT=18083; PORT=$PORT taskset -c 0 "$PEERS_DIR/target/release/actix-peer" >/dev/null 2>&1 & PID=$! ;;
    nginx) PORT=18080; sed "s#/tmp/peers#$PEERS_DIR#g" ../shared/peers/nginx.conf > "$PEERS_DIR/nginx.conf"
           taskset -c 0 nginx -c "$PEERS_DIR/nginx.conf" >/dev/null 2>&1 & PID=$! ;;
    *) PORT=18090
       # 06 gets as many workers as wrk has connections: with its default (one per core) the
       # keep-alive connections would hold every worker and the rest would wait in the queue.
       extra=(); [ "$1" = 06-worker-pool ] && extra=(--threads 64)
       taskset -c 0 "target/release/flash-$1" --port $PORT --quiet --results-dir "${TMPDIR:-/tmp}/ladder-results-$1" "${extra[@]}" >/dev/null 2>&1 & PID=$! ;;
  esac
  for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$PORT/hello" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "$1 did not answer" >&2; return 1
}
stop() { [ -n "$PID" ] && { kill -TERM "$PID" 2>/dev/null; wait "$PID" 2>/dev/null; PID=""; sleep 0.5; }; }
trap stop EXIT

# The server's CPU seconds so far (utime + stime, USER_HZ 100), its worker processes included
# (nginx's workers are children of the pid started here).
cpu() { local t=0 p; for p in "$PID" $(pgrep -P "$PID"); do t=$(awk -v t="$t" '{print t + ($14 + $15) / 100}' "/proc/$p/stat" 2>/dev/null || echo "$t"); done; echo "$t"; }
median() { sort -n | awk '{a[NR]=$1} END {if (NR==0) print "NA"; else if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

# Interleaved: each round runs every server once, so that a slow minute of a shared machine
# falls on all of them rather than on one server's runs.
for scen in $SCENARIOS; do
  for run in $(seq "$RUNS"); do
    for s in $SERVERS; do
      start "$s" || { stop; continue; }
      f="$OUT/$s-$scen-run$run.txt"
      case "$scen" in
        c1) cmd=(wrk -t1 -c1 -d"$DUR" --latency "http://127.0.0.1:$PORT/hello") ;;
        c64) cmd=(wrk -t1 -c64 -d"$DUR" --latency "http://127.0.0.1:$PORT/hello") ;;
        c64pipe16) cmd=(wrk -t1 -c64 -d"$DUR" --latency -s ../shared/peers/pipeline.lua "http://127.0.0.1:$PORT/hello" -- 16) ;;
        c64fl) cmd=(target/release/flash-load -c 64 -d "$DUR" "http://127.0.0.1:$PORT/hello") ;;
        c64pipe16fl) cmd=(target/release/flash-load -c 64 --pipeline 16 -d "$DUR" "http://127.0.0.1:$PORT/hello") ;;
      esac
      echo "# ${cmd[*]}" > "$f"
      before=$(cpu); t0=$(date +%s.%N)
      taskset -c 1 "${cmd[@]}" >> "$f" 2>&1
      busy=$(awk -v a="$before" -v b="$(cpu)" -v t0="$t0" -v t1="$(date +%s.%N)" 'BEGIN {printf "%.0f%%", 100 * (b - a) / (t1 - t0)}')
      stop
      case "$scen" in
        *fl) rps=$(grep -m1 -oE '[0-9,.]+ req/s' "$f" | tr -d ', req/s')
             p99=$(awk '$1=="p50" {for (i = 1; i < NF; i++) if ($i == "p99") print $(i + 1) $(i + 2)}' "$f") ;;
        *) rps=$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' "$f")
           p99=$(awk '$1=="99%" {print $2}' "$f") ;;
      esac
      printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$s" "$scen" "$run" "${rps:-0}" "${p99:-NA}" "$busy" >> "$OUT/summary.tsv"
    done
  done
done

# The table: medians, and ratios to the peers measured in this same run.
med() { awk -v s="$1" -v c="$2" '$1==s && $2==c {print $4}' "$OUT/summary.tsv" | median; }
p99() { awk -v s="$1" -v c="$2" '$1==s && $2==c {print $5}' "$OUT/summary.tsv" | head -1; }
busy() { awk -v s="$1" -v c="$2" '$1==s && $2==c {sub("%", "", $6); print $6}' "$OUT/summary.tsv" | median; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 > 0 && a != "NA") printf "%.2f", a/b; else print "NA" }'; }
for scen in $SCENARIOS; do
  gen="wrk -t1"; case "$scen" in *fl) gen="flash-load" ;; esac
  echo; echo "### $scen (median of $RUNS × $DUR, requests/s; server on CPU 0, $gen on CPU 1)"; echo
  echo "| server | req/s | p99 (first run) | server CPU | / hyper | / may_minihttp | / nginx |"
  echo "|---|---:|---:|---:|---:|---:|---:|"
  h=$(med hyper "$scen"); m=$(med may "$scen"); n=$(med nginx "$scen")
  for s in $SERVERS; do
    r=$(med "$s" "$scen")
    echo "| $s | $r | $(p99 "$s" "$scen") | $(busy "$s" "$scen")% | $(ratio "$r" "$h") | $(ratio "$r" "$m") | $(ratio "$r" "$n") |"
  done
done
