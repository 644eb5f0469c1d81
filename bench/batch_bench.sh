#!/usr/bin/env bash
# di batch next to di infer on the same prompts, in one run: N tiny embedding requests (minilm-tiny fixture), and a
# tenth of them, each side twice, interleaved; prints wall seconds, peak RSS, and the two ratios docs/benchmarks.md
# reports: batch/infer throughput at N, and batch's peak RSS at N over at N/10.
# Usage: bench/batch_bench.sh [N] (default 200000); needs a Release build (dotnet build src/Host -c Release).
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-200000}
small=$((n / 10))
di="dotnet src/Host/bin/Release/net10.0/linux-x64/di.dll"
model=tests/fixtures/minilm-tiny/model
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 bench/make_batch_input.py "$n" "$work/in.jsonl" "$work/in.safetensors"
python3 bench/make_batch_input.py "$small" "$work/small.jsonl" "$work/small.safetensors"
run() { # name, command...: prints "name wall_s maxrss_kb"
  local name=$1; shift
  /usr/bin/time -f "$name %e %M" "$@" > /dev/null 2> "$work/err" || { cat "$work/err"; exit 1; }
  tail -1 "$work/err"
}
echo "# di batch vs di infer, $n requests, load average $(cut -d' ' -f1-3 /proc/loadavg)"
for round in 1 2; do
  run infer $di infer --model $model --task embed --input-ids "$work/in.safetensors" --output "$work/infer.jsonl" --max-batch-size 32 --quiet
  run batch $di batch --model $model --input "$work/in.jsonl" --output "$work/batch.jsonl" --restart --max-batch-size 32 --quiet
  run batch-small $di batch --model $model --input "$work/small.jsonl" --output "$work/small-out.jsonl" --restart --max-batch-size 32 --quiet
done | tee "$work/runs"
echo "# load average $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$work/runs" <<'PY'
import sys, statistics
runs = {}
for line in open(sys.argv[1]):
    name, wall, rss = line.split()
    runs.setdefault(name, []).append((float(wall), int(rss)))
med = lambda name, i: statistics.median(r[i] for r in runs[name])
print(f"batch/infer throughput (median wall infer / batch): {med('infer', 0) / med('batch', 0):.2f}x")
print(f"batch peak RSS at N / at N/10: {max(r[1] for r in runs['batch']) / max(r[1] for r in runs['batch-small']):.2f}x "
      f"({max(r[1] for r in runs['batch']) // 1024} MB / {max(r[1] for r in runs['batch-small']) // 1024} MB; di infer {max(r[1] for r in runs['infer']) // 1024} MB)")
PY
