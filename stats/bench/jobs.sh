#!/usr/bin/env bash
# Jobs per second through the stats API of one Flash server: flash-load POSTs the nine
# statistics of mix.txt for a fixed count, then this script polls /api/num_jobs until every
# job is on disk. A POST only queues a job, so the POST rate alone would overstate the
# service; the figure that counts is jobs finished per second, load and drain together.
#
# Usage: stats/bench/jobs.sh SERVER [JOBS] [CONNECTIONS]
#   SERVER       a package such as flash-06-worker-pool or flash-04-epoll
#   JOBS         how many jobs to submit (default 20000)
#   CONNECTIONS  flash-load connections (default 16)
# Needs release builds: cargo build --release -p SERVER -p flash-load.
# Extra server flags go in SERVER_FLAGS (e.g. SERVER_FLAGS="--job-threads 1").
set -euo pipefail

server=${1:?usage: jobs.sh SERVER [JOBS] [CONNECTIONS]}
jobs=${2:-20000}
conns=${3:-16}
here=$(cd "$(dirname "$0")" && pwd)
bin=${CARGO_TARGET_DIR:-$here/../../target}/release
[ -x "$bin/$server" ] || { echo "no $bin/$server: cargo build --release -p $server" >&2; exit 2; }
[ -x "$bin/flash-load" ] || { echo "no $bin/flash-load: cargo build --release -p flash-load" >&2; exit 2; }

scratch=$(mktemp -d)
pid=
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    rm -rf "$scratch"
}
trap cleanup EXIT

# shellcheck disable=SC2086 # SERVER_FLAGS is a list of flags.
"$bin/$server" --port 0 --quiet --results-dir "$scratch/results" ${SERVER_FLAGS:-} >"$scratch/out" 2>"$scratch/err" &
pid=$!
for _ in $(seq 100); do
    grep -q '^listening on' "$scratch/out" && break
    kill -0 "$pid" 2>/dev/null || { cat "$scratch/err" >&2; exit 1; }
    sleep 0.1
done
url=$(sed -n 's/^listening on //p' "$scratch/out")
[ -n "$url" ] || { echo "$server printed no address" >&2; exit 1; }
# The first job loads the CSV; keep that out of the measurement.
curl -fsS -X POST "$url/api/global_mean" \
    -d '{"question": "Percent of adults aged 18 years and older who have obesity"}' >/dev/null

num_jobs() { curl -fsS "$url/api/num_jobs" | sed -n 's/.*"num_jobs":\([0-9]*\).*/\1/p'; }
while [ "$(num_jobs)" != 0 ]; do sleep 0.05; done

start=$(date +%s.%N)
"$bin/flash-load" "$url/" --mix "$here/mix.txt" -c "$conns" -n "$jobs" --timeout 10s
posted=$(date +%s.%N)
while [ "$(num_jobs)" != 0 ]; do sleep 0.05; done
done_at=$(date +%s.%N)
finished=$(ls "$scratch/results" | grep -c '^job_id_')
awk -v s="$start" -v p="$posted" -v d="$done_at" -v n="$finished" -v srv="$server" 'BEGIN {
    printf "%s: %d jobs on disk; POSTs took %.2f s, draining %.2f s more: %.0f jobs/s finished\n",
        srv, n - 1, p - s, d - p, (n - 1) / (d - s)
}'
