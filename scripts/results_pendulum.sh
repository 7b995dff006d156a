#!/usr/bin/env bash
# Learning curves on Pendulum-v1: ME-TRPO vs model-free TRPO vs vanilla BPTT (thesis Ch. 4
# comparison), SEEDS seeds each (default 0 1 2), then the plot, the aggregated CSV and the
# table of real steps needed to reach THRESHOLD (default -300) in docs/results/.
#
# Usage: scripts/results_pendulum.sh            (about 40 minutes on 2 cores)
#        SEEDS="0 1 2 3 4" OUT=/tmp/runs scripts/results_pendulum.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SEEDS=${SEEDS:-"0 1 2"}
OUT=${OUT:-runs/results-pendulum}
THRESHOLD=${THRESHOLD:--300}
cargo build --release -p mbrl-cli
bin=target/release/mbrl-cli
for seed in $SEEDS; do
  "$bin" train --config configs/me-trpo/pendulum.toml --seed "$seed" --out "$OUT"
  "$bin" train --config configs/mb-bptt/pendulum.toml --seed "$seed" --out "$OUT"
  "$bin" train --config configs/trpo/pendulum.toml --seed "$seed" --out "$OUT"
done
mkdir -p docs/results
"$bin" plot "$OUT/me-trpo/pendulum" "$OUT/mb-bptt/pendulum" "$OUT/trpo/pendulum" \
  --out docs/results/pendulum_eval_return.png --threshold "$THRESHOLD" --log-x \
  --title "Pendulum-v1: evaluation return vs real steps (mean +- sample std over seeds $SEEDS)" \
  | tee docs/results/pendulum_steps_to_threshold.md
