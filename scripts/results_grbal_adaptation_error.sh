#!/usr/bin/env bash
# GrBAL's and ReBAL's model error before and after adaptation along a trajectory (thesis
# Sec. 9.4.1, Fig. 31) on the pendulum motor family, with a switch of the held-out gain from
# +1.8 to -1.8 in the middle of the episode; written to
# docs/results/{grbal,rebal}_adaptation_error.{csv,png} (one CSV row per seed and step; the plot
# shows the mean and the sample standard deviation over seeds) and a Markdown table per method
# on stdout. See docs/results/README.md for the reading.
# Measured cost on one thread of the 2-core machine, 3 seeds: GrBAL 100 s, ReBAL 113 s (the
# latter with a CI run on the machine).
#
# Usage: scripts/results_grbal_adaptation_error.sh   (SEEDS=0,1,2, OUT=docs/results,
#        METHODS="grbal rebal")
set -euo pipefail
cd "$(dirname "$0")/.."
SEEDS=${SEEDS:-0,1,2}
METHODS=${METHODS:-grbal rebal}
OUT=${OUT:-docs/results}
cargo build --release -p mbrl-adapt --example adaptation_error
mkdir -p "$OUT"
for method in $METHODS; do
  echo "== $method"
  CANDLE_NUM_THREADS=${CANDLE_NUM_THREADS:-1} \
    "${CARGO_TARGET_DIR:-target}/release/examples/adaptation_error" --method "$method" \
    --seeds "$SEEDS" --out "$OUT"
done
