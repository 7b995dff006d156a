#!/usr/bin/env bash
# Learning curves on the rapier half-cheetah (thesis A.2 reward, horizon 100): ME-TRPO vs
# model-free TRPO vs vanilla BPTT (thesis Ch. 4 comparison), SEEDS seeds each (default 0 1 2),
# then the plot, the aggregated CSV and the table of real steps needed to reach THRESHOLD
# (default 0, about the return of standing still) in docs/results/.
#
# Usage: scripts/results_half_cheetah.sh        (about 90 minutes on 2 idle cores)
#        SEEDS="0 1 2 3 4" OUT=/tmp/runs BIN=path/to/mbrl-cli scripts/results_half_cheetah.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SEEDS=${SEEDS:-"0 1 2"}
OUT=${OUT:-runs/results-half-cheetah}
THRESHOLD=${THRESHOLD:-0}
if [ -z "${BIN:-}" ]; then
  cargo build --release -p mbrl-cli
  BIN=target/release/mbrl-cli
fi
for config in configs/me-trpo/half-cheetah-short.toml configs/trpo/half-cheetah.toml \
  configs/mb-bptt/half-cheetah.toml; do
  for seed in $SEEDS; do
    "$BIN" train --config "$config" --seed "$seed" --out "$OUT"
  done
done
mkdir -p docs/results
"$BIN" plot "$OUT/me-trpo/half-cheetah" "$OUT/mb-bptt/half-cheetah" "$OUT/trpo/half-cheetah" \
  --out docs/results/half_cheetah_eval_return.png --threshold "$THRESHOLD" --log-x \
  --title "half-cheetah (H=100): evaluation return vs real steps (mean +- sample std over seeds $SEEDS)" \
  | tee docs/results/half_cheetah_steps_to_threshold.md
