#!/usr/bin/env bash
# Server 08 (io_uring) against 04 (epoll) and may_minihttp, side by side and interleaved: each
# round runs every server once per scenario, so a neighbour's burst of load on this shared machine
# spreads over all of them instead of landing on one. Server pinned to CPU 0, load generator to
# CPU 1, both at nice -10 (NICE), so that neighbours' builds at nice 0 or 10 get a small share of
# those cores while a run lasts. Loopback only; every server started here is stopped by its own pid.
#
#   benchmarks/results/2026-12-04-epyc-2vcpu/uring.sh [ROUNDS] [DUR]      (defaults: 5 rounds of 5s)
#
# Scenarios: c64 (`wrk -t1 -c64 /hello`) and pipe16 (`flash-load -c 64 --pipeline 16 /hello`, as
# wrk is the bottleneck when pipelining). Needs wrk, the release binaries of 04, 08 and
# flash-load, and may-peer from ../shared/peers/build.sh (PEERS_DIR, default /tmp/peers).
# Writes each run's raw output and summary.tsv (server, scenario, round, req/s, server CPU seconds,
# the machine's 1-minute load average at the start: other jobs on it show there) to OUT.
set -uo pipefail
cd "$(dirname "$0")/../../.."
ROUNDS="${1:-5}"
DUR="${2:-5s}"
PEERS_DIR="${PEERS_DIR:-/tmp/peers}"
OUT="${OUT:-target/uring-bench}"
SERVERS="${SERVERS:-04-epoll 08-io-uring may}"
NICE="${NICE:--10}"
mkdir -p "$OUT"
: > "$OUT/summary.tsv"
nice -n 10 cargo build --release -q -p flash-04-epoll -p flash-08-io-uring -p flash-load

PID=""
start() { # name -> sets PORT and PID
  case "$1" in
    may) PORT=18082; PORT=$PORT nice -n "$NICE" taskset -c 0 "$PEERS_DIR/target/release/may-peer" >/dev/null 2>&1 & PID=$! ;;
    *) PORT=18090; nice -n "$NICE" taskset -c 0 "target/release/flash-$1" --port $PORT --quiet --results-dir "${TMPDIR:-/tmp}/uring-bench-results-$1" >/dev/null 2>&1 & PID=$! ;;
  esac
  for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$PORT/hello" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "$1 did not answer" >&2; return 1
}
stop() { [ -n "$PID" ] && { kill -TERM "$PID" 2>/dev/null; wait "$PID" 2>/dev/null; PID=""; sleep 0.5; }; }
trap stop EXIT
cpu() { awk '{print ($14 + $15) / 100}' "/proc/$PID/stat"; } # utime + stime, seconds (USER_HZ 100)

for round in $(seq "$ROUNDS"); do
  for scen in c64 pipe16; do
    for s in $SERVERS; do
      start "$s" || { stop; continue; }
      f="$OUT/$s-$scen-round$round.txt"
      case "$scen" in
        c64) cmd=(wrk -t1 -c64 -d"$DUR" --latency "http://127.0.0.1:$PORT/hello") ;;
        pipe16) cmd=(target/release/flash-load -c 64 --pipeline 16 -d "$DUR" "http://127.0.0.1:$PORT/hello") ;;
      esac
      echo "# ${cmd[*]}" > "$f"
      load=$(cut -d' ' -f1 /proc/loadavg)
      before=$(cpu)
      nice -n "$NICE" taskset -c 1 "${cmd[@]}" >> "$f" 2>&1
      after=$(cpu)
      stop
      case "$scen" in
        c64) rps=$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' "$f") ;;
        pipe16) rps=$(grep -m1 -oE '[0-9,.]+ req/s' "$f" | tr -d ', req/s') ;;
      esac
      printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$s" "$scen" "$round" "${rps:-0}" "$(awk -v a="$before" -v b="$after" 'BEGIN {print b - a}')" "$load" >> "$OUT/summary.tsv"
    done
  done
done
column -t "$OUT/summary.tsv"
