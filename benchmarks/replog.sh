#!/usr/bin/env bash
# The replicated log's write throughput and latency: a primary with two secondaries on this
# machine, loaded with flash-load POSTing messages, for w = 1, 2, 3, fsync batch and never, 1 and
# 64 concurrent writers. On a 2-core machine the three nodes share CPU 0 and flash-load has CPU 1.
# Every node started here is stopped by its own pid.
#
#   benchmarks/replog.sh [DUR]            (default 10s per cell, after a 1 s warm-up)
#   FSYNCS="batch" WS="1 3" CONNS="64" benchmarks/replog.sh 5s
#
# Writes each cell's flash-load report (text and --json) into OUT (default target/replog-bench)
# and prints a Markdown table with writes/s, p50, p99 and the ratios to w=1 of the same run.
set -uo pipefail
cd "$(dirname "$0")/.."
DUR="${1:-10s}"
OUT="${OUT:-target/replog-bench}"
FSYNCS="${FSYNCS:-batch never}"
WS="${WS:-1 2 3}"
CONNS="${CONNS:-1 64}"
mkdir -p "$OUT"
ulimit -n "$(ulimit -Hn)"
cargo build --release -q -p flash-replog -p flash-load
BIN=target/release/flash-replog
LOAD=target/release/flash-load
DATA="$(mktemp -d)"
PIDS=()
stop_all() { for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done; for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done; PIDS=(); }
trap 'stop_all; rm -rf "$DATA"' EXIT

# Starts a node: sets URL to its address and appends its pid to PIDS. Called in this shell, not
# in a $(...) subshell, so that PIDS reaches stop_all.
node() { # name args...
  local name="$1"; shift
  local out="$DATA/$name.out"
  taskset -c 0 "$BIN" --port 0 --threads 1 --quiet --data-dir "$DATA/$name" "$@" >"$out" 2>"$DATA/$name.err" &
  PIDS+=($!)
  for _ in $(seq 1 200); do
    if head -1 "$out" 2>/dev/null | grep -q '^listening on '; then URL=$(head -1 "$out" | sed 's/^listening on //'); return; fi
    sleep 0.05
  done
  echo "node $name did not start" >&2; exit 1
}

: > "$OUT/cells.tsv"
for fsync in $FSYNCS; do
  stop_all
  rm -rf "${DATA:?}"/*
  node "s1-$fsync" --role secondary --fsync "$fsync"; s1=$URL
  node "s2-$fsync" --role secondary --fsync "$fsync"; s2=$URL
  node "m-$fsync" --role primary --fsync "$fsync" --secondary "$s1" --secondary "$s2"; m=$URL
  # Wait until both secondaries are healthy (the primary refuses writes until a majority is).
  for _ in $(seq 1 200); do
    curl -s "$m/health" | python3 -c 'import json,sys; sys.exit(any(n["status"] != "healthy" for n in json.load(sys.stdin)["nodes"]))' && break
    sleep 0.05
  done
  for c in $CONNS; do
    for w in $WS; do
      cell="$fsync-c$c-w$w"
      taskset -c 1 "$LOAD" -m POST -H 'Content-Type: application/json' \
        --body '{"message": "a message of about sixty bytes for the replicated log"}' \
        -c "$c" -d "$DUR" --warmup 1s --timeout 5s --json "$OUT/$cell.json" "$m/messages?w=$w" >"$OUT/$cell.txt" 2>&1
      python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["result"]; l=r["latency"]; bad=sum(r["errors"].values())+sum(v for k,v in r["status"].items() if k!="201"); print(*sys.argv[2:5], round(r["requests_per_sec"]), l["p50_us"], l["p99_us"], bad, sep="\t")' \
        "$OUT/$cell.json" "$fsync" "$c" "$w" >> "$OUT/cells.tsv"
      echo "$cell done"
    done
  done
done
stop_all
# The table: each cell beside w=1 of the same fsync and writers, measured a minute apart.
python3 benchmarks/replog-table.py "$OUT/cells.tsv" | tee "$OUT/summary.md"
echo "raw results in $OUT"
