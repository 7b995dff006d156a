#!/usr/bin/env bash
# MB-MPO on the rapier half-cheetah (A.2 reward, horizon 100; configs/mb-mpo/half-cheetah-short.toml)
# against ME-TRPO (configs/me-trpo/half-cheetah-short.toml) and its own ablations, SEEDS seeds
# each (default 0 1 2), ITERATIONS iterations of 3000 real steps (default 8):
#   efficiency   MB-MPO vs ME-TRPO: evaluation return against real steps (Sec. 5.5.1)
#   robustness   both with biased, noisy models, b_max in {0, 0.5, 1.0} (Fig. 10)
#   adaptation   MB-MPO with inner step 0.001 vs 0 (no adaptation; Fig. 9, which uses horizon
#                1000: here 100, like the other groups)
#   exploration  MB-MPO collecting real data with the adapted policies (tailored exploration,
#                Appendix B.1) vs with the pre-update policy
# Each group writes a plot, its CSV and a table (real steps to THRESHOLD, default 0) to
# docs/results/mb_mpo_half_cheetah_<group>.{png,csv,md}. Groups can be run separately:
#
# Usage: scripts/results_mb_mpo_half_cheetah.sh [efficiency|robustness|adaptation|exploration]...
#        SEEDS="0 1 2" ITERATIONS=8 OUT=/tmp/runs BIN=path/to/mbrl-cli scripts/results_mb_mpo_half_cheetah.sh robustness
# Cost on an idle 2-core machine: ~15 minutes per MB-MPO run, ~5 per ME-TRPO run; about 1 h
# (efficiency), 3 h (robustness), 45 min each (adaptation, exploration). Resumable: seeds with a
# finished run under OUT are skipped, interrupted ones resume from their newest checkpoint.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/resumable_runs.sh
source scripts/lib/resumable_runs.sh
SEEDS=${SEEDS:-"0 1 2"}
ITERATIONS=${ITERATIONS:-8}
THRESHOLD=${THRESHOLD:-0}
OUT=${OUT:-runs/results-mb-mpo-half-cheetah}
GROUPS_TO_RUN=${*:-efficiency robustness adaptation exploration}
if [ -z "${BIN:-}" ]; then
  cargo build --release -p mbrl-cli
  BIN=target/release/mbrl-cli
fi
mkdir -p docs/results

# run ALGO LABEL --set ...: SEEDS runs of ALGO's short half-cheetah config under $OUT/LABEL.
run() {
  local algo=$1 label=$2
  shift 2
  for seed in $SEEDS; do
    train_seed "$OUT/$label/$algo/half-cheetah" "$seed" "$ITERATIONS" "$BIN" \
      --config "configs/$algo/half-cheetah-short.toml" --out "$OUT/$label" \
      --set run.iterations="$ITERATIONS" "$@"
  done
}

# plot GROUP ALGO:LABEL...: one curve per variant (mean and sample std over seeds).
plot() {
  local group=$1
  shift
  local args=() spec
  for spec in "$@"; do
    args+=("${spec#*:}=$OUT/${spec#*:}/${spec%%:*}/half-cheetah")
  done
  "$BIN" plot "${args[@]}" --out "docs/results/mb_mpo_half_cheetah_$group.png" \
    --threshold "$THRESHOLD" \
    --title "Half-cheetah (H=100): $group (mean +- sample std over seeds $SEEDS)" \
    | tee "docs/results/mb_mpo_half_cheetah_$group.md"
}

for group in $GROUPS_TO_RUN; do
  case $group in
    efficiency)
      run mb-mpo mb-mpo
      run me-trpo me-trpo
      plot efficiency mb-mpo:mb-mpo me-trpo:me-trpo
      ;;
    robustness)
      specs=()
      for b in 0 0.5 1.0; do
        run mb-mpo "mb-mpo-bias-$b" --set mb_mpo.model_bias_max="$b"
        run me-trpo "me-trpo-bias-$b" --set me_trpo.model_bias_max="$b"
        specs+=("mb-mpo:mb-mpo-bias-$b" "me-trpo:me-trpo-bias-$b")
      done
      plot robustness "${specs[@]}"
      ;;
    adaptation)
      run mb-mpo mb-mpo
      run mb-mpo mb-mpo-no-adaptation --set mb_mpo.inner_step_size=0
      plot adaptation mb-mpo:mb-mpo mb-mpo:mb-mpo-no-adaptation
      ;;
    exploration)
      run mb-mpo mb-mpo
      run mb-mpo mb-mpo-pre-update-exploration --set mb_mpo.tailored_exploration=false
      plot exploration mb-mpo:mb-mpo mb-mpo:mb-mpo-pre-update-exploration
      ;;
    *)
      echo "unknown group '$group' (efficiency, robustness, adaptation, exploration)" >&2
      exit 2
      ;;
  esac
done
