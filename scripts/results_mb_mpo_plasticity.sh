#!/usr/bin/env bash
# Thesis Fig. 11 (Sec. 5.5.4) on point2d: heat maps of the MB-MPO ensemble's prediction std and
# of the mean KL between the pre-update and the adapted policies, after each of ITERATIONS
# (default 5) iterations, for SEEDS (default 0 1 2), with the correlations of the two maps.
# Writes docs/results/mb_mpo_plasticity_seed<S>.{png,csv} and
# docs/results/mb_mpo_plasticity_correlation.csv (all seeds).
#
# Usage: scripts/results_mb_mpo_plasticity.sh       (about 2 minutes per seed on 2 cores)
#        SEEDS="0" ITERATIONS=3 OUT=/tmp/plasticity scripts/results_mb_mpo_plasticity.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SEEDS=${SEEDS:-"0 1 2"}
ITERATIONS=${ITERATIONS:-5}
OUT=${OUT:-docs/results}
cargo build --release -p mbrl-meta --example mb_mpo_plasticity
bin=${CARGO_TARGET_DIR:-target}/release/examples/mb_mpo_plasticity
mkdir -p "$OUT"
summary="$OUT/mb_mpo_plasticity_correlation.csv"
rm -f "$summary"
for seed in $SEEDS; do
  "$bin" --out "$OUT" --seed "$seed" --iterations "$ITERATIONS"
  part="$OUT/mb_mpo_plasticity_seed${seed}_correlation.csv"
  if [ -f "$summary" ]; then tail -n +2 "$part" >> "$summary"; else cp "$part" "$summary"; fi
  rm "$part"
done
echo "wrote $summary"
