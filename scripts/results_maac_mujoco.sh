#!/usr/bin/env bash
# MAAC vs MBPO vs SAC on MuJoCo (thesis Fig. 19, Fig. 21 and Table 1; Gymnasium v5 rewards,
# 1000-step episodes), SEEDS seeds each (default 0 1 2), in this order so that partial results
# accumulate where they matter most:
#   1. half-cheetah-v5: maac, mbpo, sac, 50 iterations of 1000 real steps each (50k);
#   2. hopper-v5: the same;
#   3. Fig. 21 ablations of MAAC on half-cheetah-v5: H = 0 (`maac.horizon=0`), one-step critic
#      targets (`maac.targets=one_step`), a single terminal action sample
#      (`maac.action_samples=1`), 50k real steps;
#   4. sac continued to 200 iterations (200k) on both, for context.
# Then, from whatever has finished: plots and steps-to-threshold tables per environment and for
# the ablations (`mbrl-cli plot`, mean +- sample std over seeds), and Table 1: the final MAAC
# policies evaluated with and without test-time CEM MPC (`mbrl-cli eval --planner cem`, 5
# episodes each).
#
# Usage: scripts/results_maac_mujoco.sh        SEEDS="0 1 2" OUT=runs/results-maac-mujoco
#        BIN=path/to/mbrl-cli (built with --features mujoco) STAGES="1 2 3 4 report"
# Resumable: seeds with a finished run under OUT are skipped, interrupted ones resume from their
# newest checkpoint (every iteration for maac and mbpo, every 5 for sac).
# Measured cost, one thread (CANDLE_NUM_THREADS=1), AMD EPYC (Zen 4), 2026-12-03: one 1000-step
# MAAC iteration on half-cheetah-v5 takes 1185 s (1133.5 s of it the 8000 actor-critic updates),
# so a 50-iteration MAAC run takes about 16 hours (docs/performance.md, mbrl-maac).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/resumable_runs.sh
source scripts/lib/resumable_runs.sh
SEEDS=${SEEDS:-"0 1 2"}
OUT=${OUT:-runs/results-maac-mujoco}
STAGES=${STAGES:-"1 2 3 4 report"}
eval "$(scripts/setup_mujoco.sh)"
if [ -z "${BIN:-}" ]; then
  cargo build --release -p mbrl-cli --features mujoco
  BIN=${CARGO_TARGET_DIR:-target}/release/mbrl-cli
fi
export CANDLE_NUM_THREADS=${CANDLE_NUM_THREADS:-1}
export RAYON_NUM_THREADS=${RAYON_NUM_THREADS:-1}

# run OUT_SUBDIR ALGO ENV ITERATIONS SEED [--set ...]: one resumable seed.
run() {
  local sub=$1 algo=$2 env=$3 iterations=$4 seed=$5
  shift 5
  train_seed "$OUT/$sub/$algo/$env" "$seed" "$iterations" "$BIN" \
    --config "configs/$algo/$env-mujoco.toml" --out "$OUT/$sub" \
    --set run.iterations="$iterations" "$@"
}

has_stage() { [[ " $STAGES " == *" $1 "* ]]; }

for stage_env in 1:half-cheetah-v5 2:hopper-v5; do
  has_stage "${stage_env%%:*}" || continue
  for seed in $SEEDS; do
    for algo in maac mbpo sac; do
      run main "$algo" "${stage_env#*:}" 50 "$seed"
    done
  done
done
if has_stage 3; then
  for seed in $SEEDS; do
    run ablation-h0 maac half-cheetah-v5 50 "$seed" --set maac.horizon=0
    run ablation-one-step-targets maac half-cheetah-v5 50 "$seed" --set maac.targets=one_step
    run ablation-one-action-sample maac half-cheetah-v5 50 "$seed" --set maac.action_samples=1
  done
fi
if has_stage 4; then
  for env in half-cheetah-v5 hopper-v5; do
    for seed in $SEEDS; do
      run main sac "$env" 200 "$seed"
    done
  done
fi
has_stage report || exit 0

mkdir -p docs/results
# Only curves with at least one run are plotted.
present() { compgen -G "$1/*-s*/metrics.csv" >/dev/null; }
declare -A THRESHOLD=([half-cheetah-v5]=3000 [hopper-v5]=1000)
for env in half-cheetah-v5 hopper-v5; do
  curves=()
  for algo in maac mbpo sac; do
    dir=$OUT/main/$algo/$env
    present "$dir" && curves+=("${algo^^}=$dir")
  done
  [ ${#curves[@]} -gt 0 ] || continue
  "$BIN" plot "${curves[@]}" --out "docs/results/maac_mujoco_$env.png" \
    --threshold "${THRESHOLD[$env]}" --title "$env, MuJoCo, H=1000 (mean +- sample std over seeds)" \
    | tee "docs/results/maac_mujoco_${env}_steps_to_threshold.md"
done
curves=()
for sub in main ablation-h0 ablation-one-step-targets ablation-one-action-sample; do
  dir=$OUT/$sub/maac/half-cheetah-v5
  present "$dir" && curves+=("${sub/main/MAAC}=$dir")
done
if [ ${#curves[@]} -gt 0 ]; then
  "$BIN" plot "${curves[@]}" --out docs/results/maac_mujoco_ablations.png --threshold 3000 \
    --title "MAAC ablations, half-cheetah-v5 (mean +- sample std over seeds)" \
    | tee docs/results/maac_mujoco_ablations_steps_to_threshold.md
fi
# Table 1: each finished MAAC run's final policy, alone and under CEM MPC.
table=docs/results/maac_mujoco_mpc.md
{
  echo "| env | seed | policy | policy + CEM MPC |"
  echo "|---|---|---|---|"
  for env in half-cheetah-v5 hopper-v5; do
    for seed in $SEEDS; do
      finished "$OUT/main/maac/$env" "$seed" 50 || continue
      for run_dir in "$OUT/main/maac/$env"/*-s"$seed"; do
        policy=$("$BIN" eval --run "$run_dir" --episodes 5 | awk '{print $2, $3, $4}')
        mpc=$("$BIN" eval --run "$run_dir" --episodes 5 --planner cem | awk '{print $2, $3, $4}')
        echo "| $env | $seed | $policy | $mpc |"
      done
    done
  done
} | tee "$table"
