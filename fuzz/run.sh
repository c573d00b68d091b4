#!/usr/bin/env bash
# Runs every fuzz target for a bounded time and says how it went.
#
#   fuzz/run.sh [SECONDS] [TARGET...]     (default: 30 seconds each, every target)
#   fuzz/run.sh --replay [TARGET...]      (each committed input once: what CI runs)
#
# Builds the targets (nightly and cargo-fuzz; cargo-fuzz is installed from crates.io if it is
# missing), then runs them one after another, never two at once, at the lowest priority, each
# starting from its committed corpus (fuzz/corpus/TARGET, only read: what a run finds goes to a
# scratch folder removed at the end, so the committed corpus stays small; FUZZ_KEEP=/abs/dir
# keeps the finds in /abs/dir/TARGET instead, for README.md's way of adding to the corpus).
# Prints executions, seconds and executions per second per target, and exits non-zero if any
# target crashed, hung (10 s on one input) or ran out of memory; the input that did it is kept
# in fuzz/artifacts/TARGET/ and what went wrong is printed.
set -euo pipefail
cd "$(dirname "$0")"

# --replay runs every input of the committed corpus once and nothing else: the same inputs give
# the same verdict every time, so it can gate a change; a timed run explores, and may find a bug
# the change did not touch (that is what it is for, but not what a gate is for).
seconds=${1:-30}
[ $# -gt 0 ] && shift
if [ "$seconds" = --replay ]; then
  budget=(-runs=0)
elif [[ $seconds =~ ^[0-9]+$ ]] && [ "$seconds" -gt 0 ]; then
  budget=(-max_total_time="$seconds")
else
  echo "usage: fuzz/run.sh [SECONDS per target, a whole number > 0 | --replay] [TARGET...]" >&2
  exit 2
fi

if ! cargo +nightly --version >/dev/null 2>&1; then
  echo "fuzz/run.sh: cargo fuzz needs a nightly toolchain (rustup toolchain install nightly)" >&2
  exit 2
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz/run.sh: cargo-fuzz not found; installing it from crates.io (cargo install cargo-fuzz --locked)"
  nice -n 19 cargo install cargo-fuzz --locked
fi

all=$(cargo +nightly fuzz list)
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets <<<"$all"
for t in "${targets[@]}"; do
  grep -qx -- "$t" <<<"$all" || { echo "fuzz/run.sh: no target '$t' (there are: $(echo $all))" >&2; exit 2; }
done

# A scratch folder for the new corpus entries and for the stats target's result files
# (tmpfs when there is one: that target fsyncs every job it runs).
base=/tmp
[ -d /dev/shm ] && [ -w /dev/shm ] && base=/dev/shm
scratch=$(mktemp -d "$base/flash-fuzz.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
export TMPDIR="$scratch"

echo "building the fuzz targets (nightly, release with debug assertions) ..."
if ! nice -n 19 cargo +nightly fuzz build >"$scratch/build.log" 2>&1; then
  cat "$scratch/build.log"
  echo "fuzz/run.sh: the build failed" >&2
  exit 1
fi

failed=0
printf '%-8s %12s %8s %10s  %s\n' target executions seconds 'exec/s' result
for t in "${targets[@]}"; do
  found="${FUZZ_KEEP:-$scratch/corpus}/$t"
  mkdir -p "$found" "artifacts/$t"
  log="$scratch/$t.log"
  start=$(date +%s%N)
  rc=0
  nice -n 19 cargo +nightly fuzz run "$t" "$found" "corpus/$t" -- \
    "${budget[@]}" -max_len=8192 -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="artifacts/$t/" >"$log" 2>&1 || rc=$?
  elapsed=$(awk -v a="$start" -v b="$(date +%s%N)" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')
  execs=$(awk '/stat::number_of_executed_units/ {print $2}' "$log" | tail -1)
  execs=${execs:-0}
  rate=$(awk -v n="$execs" -v s="$elapsed" 'BEGIN { printf "%d", n / s }')
  result=ok
  if [ "$rc" -ne 0 ]; then
    result="FAILED (exit $rc)"
    failed=1
  fi
  printf '%-8s %12s %8s %10s  %s\n' "$t" "$execs" "$elapsed" "$rate" "$result"
  if [ "$rc" -ne 0 ]; then
    echo "---- $t: what went wrong ($log is removed on exit) ----"
    grep -m1 -A12 -E "panicked at|ERROR: libFuzzer|ERROR: AddressSanitizer|==ERROR" "$log" || tail -40 "$log"
    grep -m1 -A2 "Failing input" "$log" | tail -1 | sed "s|^\s*|input: fuzz/|"
    echo "reproduce: cd fuzz && cargo +nightly fuzz run $t <input>"
  fi
done
exit $failed
