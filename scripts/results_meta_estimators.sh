#!/usr/bin/env bash
# Meta-gradient estimator results on point1d-goal (thesis Ch. 6), written to docs/results/:
# - meta_gradient_relative_std.{csv,png}: relative std of the LVC, DiCE, MAML and E-MAML
#   meta-gradients along an LVC-VPG meta-training run (Fig. 15);
# - formulation_gradient_fields.{csv,png}: formulation I (DiCE) vs formulation II (E-MAML)
#   meta-gradient directions and VPG paths for a two-parameter policy (Fig. 17).
# See docs/results/meta_estimators.md for the reading. About 4 minutes on 2 cores.
#
# Usage: scripts/results_meta_estimators.sh          (SEED=0, OUT=docs/results)
set -euo pipefail
cd "$(dirname "$0")/.."
SEED=${SEED:-0}
OUT=${OUT:-docs/results}
cargo build --release -p mbrl-meta --example estimator_variance --example formulation_fields
bin=${CARGO_TARGET_DIR:-target}/release/examples
mkdir -p "$OUT"
"$bin/estimator_variance" --out "$OUT" --seed "$SEED" --iterations 30 --every 3 --batches 16 \
  --tasks 40 --rollouts 20 --hidden 64 --inner-step 0.01 --learning-rate 0.01
"$bin/formulation_fields" --out "$OUT" --seed "$SEED" --grid 13 --batches 10 --tasks 2 \
  --rollouts 20 --std 0.3 --inner-step 0.05 --learning-rate 0.05 --steps 100 --start -1.2,0.8
