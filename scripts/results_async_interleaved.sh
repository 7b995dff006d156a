#!/usr/bin/env bash
# Thesis Fig. 26 (Sec. 8.4.2-8.4.3) at a small scale: sequential ME-TRPO against the two
# partially-asynchronous variants, me-trpo-interleaved-model (model epochs and policy steps
# alternate) and me-trpo-interleaved-data (policy steps and new rollouts alternate), on
# Pendulum-v1 (the thesis used HalfCheetah and Walker2d), SEEDS seeds each (default 0 1 2),
# ITERATIONS iterations of 3000 real steps (default 5), all from
# configs/async/pendulum-interleaved.toml. Writes docs/results/async_interleaved_pendulum.png
# and .csv (evaluation return against real steps; `mbrl-cli plot`'s band and `std` column are
# the sample std (n - 1) over seeds), its table of real steps to reach THRESHOLD (default -300),
# and docs/results/async_interleaved_pendulum.md: per iteration, mean +- sample std (n - 1)
# over seeds of the evaluation return, and each method's policy updates and wall time.
#
# Usage: scripts/results_async_interleaved.sh
#        SEEDS="0 1 2" ITERATIONS=5 OUT=/tmp/runs BIN=target/release/mbrl-cli ...
# Resumable: seeds with a finished run under OUT are skipped, interrupted ones resume from their
# newest checkpoint (one per iteration).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/resumable_runs.sh
source scripts/lib/resumable_runs.sh
SEEDS=${SEEDS:-"0 1 2"}
ITERATIONS=${ITERATIONS:-5}
OUT=${OUT:-runs/results-async-interleaved}
THRESHOLD=${THRESHOLD:--300}
BIN=${BIN:-target/release/mbrl-cli}
METHODS="me-trpo me-trpo-interleaved-model me-trpo-interleaved-data"
config=configs/async/pendulum-interleaved.toml
if [ "$BIN" = target/release/mbrl-cli ]; then
  cargo build --release -p mbrl-cli
fi
for method in $METHODS; do
  for seed in $SEEDS; do
    train_seed "$OUT/$method/pendulum" "$seed" "$ITERATIONS" "$BIN" --config "$config" \
      --out "$OUT" --set algo="\"$method\"" --set run.iterations="$ITERATIONS"
  done
done
mkdir -p docs/results
dirs=()
for method in $METHODS; do dirs+=("$OUT/$method/pendulum"); done
"$BIN" plot "${dirs[@]}" --out docs/results/async_interleaved_pendulum.png \
  --threshold "$THRESHOLD" \
  --title "Pendulum-v1: ME-TRPO vs interleaved variants (mean +- sample std over seeds $SEEDS)" \
  > docs/results/async_interleaved_pendulum_threshold.md
python3 - "$OUT" "$ITERATIONS" $METHODS > docs/results/async_interleaved_pendulum.md <<'PY'
import csv, glob, statistics, sys
out, iterations, methods = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
def runs(method):
    return [list(csv.DictReader(open(f))) for f in sorted(glob.glob(f"{out}/{method}/pendulum/*/metrics.csv"))]
def cell(values):
    values = [v for v in values if v == v]
    if len(values) < 2:
        return f"{values[0]:.1f}" if values else "-"
    return f"{statistics.mean(values):.1f} +- {statistics.stdev(values):.1f}"
print("Evaluation return (10 episodes) after each iteration of 3000 real steps: mean +- sample")
print("std (n - 1) over seeds.\n")
print("| method | seeds | " + " | ".join(f"{3000 * i} steps" for i in range(1, iterations + 1)) + " |")
print("|---|---|" + "---|" * iterations)
for method in methods:
    rs = runs(method)
    row = [cell([float(r[i]["eval_return"]) for r in rs if len(r) > i]) for i in range(iterations)]
    print(f"| {method} | {len(rs)} | " + " | ".join(row) + " |")
print("\nPolicy updates per run (sum over iterations) and wall time of the whole run (s):\n")
print("| method | policy updates | wall time |")
print("|---|---|---|")
for method in methods:
    rs = [r for r in runs(method) if r]
    key = "policy_updates" if "policy_updates" in rs[0][0] else "policy_steps"
    if key == "policy_updates":
        updates = [sum(float(x[key]) for x in r) for r in rs]
    else:
        updates = [float(r[-1][key]) for r in rs]
    print(f"| {method} | {cell(updates)} | {cell([float(r[-1]['wall_time_s']) for r in rs])} |")
PY
cat docs/results/async_interleaved_pendulum.md
