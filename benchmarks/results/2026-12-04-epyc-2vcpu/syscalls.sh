#!/usr/bin/env bash
# Syscalls and server CPU per request: the server runs under `perf stat` (counting every syscall
# entry of all its threads, and its task-clock), pinned to CPU 0, while the load generator on CPU 1
# sends a fixed number of requests; both at nice -10 (NICE), as in uring.sh. Loopback only; the
# server is stopped by its own pid.
#
#   benchmarks/results/2026-12-04-epyc-2vcpu/syscalls.sh SERVER SCENARIO [REQUESTS]
#
# SERVER is a folder name (04-epoll, 08-io-uring); SCENARIO c64 (64 connections, one request in
# flight each) or pipe16 (64 connections, 16 pipelined each), both flash-load, `/hello`.
set -uo pipefail
cd "$(dirname "$0")/../../.."
s=$1 scen=$2 n=${3:-500000}
OUT="${OUT:-target/uring-bench}"
NICE="${NICE:--10}"
mkdir -p "$OUT"
case "$scen" in
  c64) load=(-c 64) ;;
  pipe16) load=(-c 64 --pipeline 16) ;;
esac
perf stat -x, -e raw_syscalls:sys_enter,task-clock -o "$OUT/perf-$s-$scen.txt" -- \
  nice -n "$NICE" taskset -c 0 "target/release/flash-$s" --port 18090 --quiet --results-dir "${TMPDIR:-/tmp}/uring-bench-results-$s" >/dev/null 2>&1 &
PERF=$!
for _ in $(seq 100); do curl -fsS http://127.0.0.1:18090/hello >/dev/null 2>&1 && break; sleep 0.1; done
nice -n "$NICE" taskset -c 1 target/release/flash-load "${load[@]}" -n "$n" http://127.0.0.1:18090/hello > "$OUT/load-$s-$scen.txt"
kill -TERM "$(pgrep -P $PERF)"; wait $PERF
sys=$(awk -F, '/sys_enter/ {print $1}' "$OUT/perf-$s-$scen.txt")
cpu=$(awk -F, '/task-clock/ {print $1}' "$OUT/perf-$s-$scen.txt")
rps=$(grep -m1 -oE '[0-9,.]+ req/s' "$OUT/load-$s-$scen.txt" | tr -d ', req/s')
awk -v s="$s" -v c="$scen" -v n="$n" -v sys="$sys" -v cpu="$cpu" -v rps="$rps" \
  'BEGIN {printf "%s\t%s\t%d requests\t%s req/s\t%.3f syscalls/request\t%.2f µs CPU/request\n", s, c, n, rps, sys/n, cpu*1000/n}'
