"""The replicated log benchmark's table (benchmarks/replog.sh): one row per cell, with its
throughput as a ratio to w=1 and its p50 as the time added over w=1, both against the w=1 cell
of the same fsync and writers in the same run."""
import sys

rows = [line.split("\t") for line in open(sys.argv[1]).read().split("\n") if line]
base = {(f, c): (float(rps), float(p50)) for f, c, w, rps, p50, p99, bad in rows if w == "1"}
print("| fsync | writers | w | writes/s | p50 | p99 | not 201 | writes/s ÷ w=1 | p50 − w=1 p50 |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
for f, c, w, rps, p50, p99, bad in rows:
    b = base.get((f, c))
    ratio = f"{float(rps) / b[0]:.2f}" if b else "–"
    added = f"{(float(p50) - b[1]) / 1000:+.2f} ms" if b else "–"
    print(f"| {f} | {c} | {w} | {int(rps):,} | {float(p50) / 1000:.2f} ms | {float(p99) / 1000:.2f} ms | {bad} | {ratio} | {added} |")
