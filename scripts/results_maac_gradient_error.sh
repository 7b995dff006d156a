#!/usr/bin/env bash
# MAAC policy-gradient error against the model horizon H on double-integrator (thesis
# Fig. 20), written to docs/results/maac_gradient_error.{csv,png} (one CSV row per seed,
# estimator and H; the plot shows the mean and the sample standard deviation over seeds) and a
# Markdown table on stdout. See docs/results/README.md for the reading.
# Measured cost: 70 s on one thread of the 2-core CI machine (3 seeds).
#
# Usage: scripts/results_maac_gradient_error.sh          (SEEDS=0,1,2, OUT=docs/results)
set -euo pipefail
cd "$(dirname "$0")/.."
SEEDS=${SEEDS:-0,1,2}
OUT=${OUT:-docs/results}
cargo build --release -p mbrl-maac --example gradient_error
mkdir -p "$OUT"
CANDLE_NUM_THREADS=${CANDLE_NUM_THREADS:-1} \
  "${CARGO_TARGET_DIR:-target}/release/examples/gradient_error" --seeds "$SEEDS" --out "$OUT"
