#!/usr/bin/env bash
# flash-load vs wrk against the same server (pinned CPU 0), generator on CPU 1, interleaved rounds.
set -u
cd /work/main
SRV=${1:-04-epoll}; ROUNDS=${2:-3}; DUR=${3:-5}
taskset -c 0 target/release/flash-$SRV --port 18095 --quiet --results-dir /tmp/m/res >/dev/null 2>&1 & P=$!
for _ in $(seq 100); do curl -fsS http://127.0.0.1:18095/hello >/dev/null 2>&1 && break; sleep 0.1; done
U=http://127.0.0.1:18095/hello
for r in $(seq $ROUNDS); do
  echo "== round $r c64"
  taskset -c 1 wrk -t1 -c64 -d${DUR}s --latency $U | grep -E "^Requests/sec|^ +(50|75|90|99)%|Latency  "
  taskset -c 1 target/release/flash-load $U -c64 -t1 -d${DUR}s --json /tmp/m/fl-c64-$SRV-$r.json 2>&1 | grep -iE "req|p50|p99|50%|99%|latency" | head -8
  echo "== round $r pipe16"
  taskset -c 1 wrk -t1 -c64 -d${DUR}s --latency -s /work/shared/peers/pipeline.lua $U -- 16 | grep -E "^Requests/sec"
  taskset -c 1 target/release/flash-load $U -c64 -t1 -d${DUR}s --pipeline 16 --json /tmp/m/fl-p16-$SRV-$r.json 2>&1 | grep -iE "req/s|requests/s" | head -3
done
kill -TERM $P; wait $P
