#!/usr/bin/env bash
# The thesis's Fig. 13 comparison on a 2-core budget: ProMP vs MAML-TRPO vs E-MAML-TRPO on the
# half-cheetah forward/backward and ant random-direction families
# (configs/{promp,maml-trpo}/{half-cheetah-fwd-back,ant-random-direction}.toml: 20 tasks x 10
# rollouts of 100 steps per iteration; 500 iterations on half-cheetah, where ProMP's meta-learning
# takes off after 190-380, and 100 on ant, or ITERATIONS for both), SEEDS seeds each (default 0 1 2), on
# BACKEND's physics:
# `mujoco` (default; the thesis's simulator, needs the `mujoco` feature, which the script
# installs and builds) or `rapier`. Writes docs/results/meta_rl_<setting>.{png,csv} (post-update
# return against real steps, mean +- sample std over seeds) and docs/results/meta_rl_<setting>.md (steps
# to THRESHOLD); with BACKEND=rapier the files are named meta_rl_<setting>_rapier.*.
#
# Usage: scripts/results_meta_rl_locomotion.sh [half-cheetah-fwd-back|ant-random-direction]...
#        SEEDS="0 1 2" ITERATIONS=100 BACKEND=mujoco OUT=/tmp/runs BIN=path/to/mbrl-cli scripts/results_meta_rl_locomotion.sh ant-random-direction
# CPU time per iteration on one thread (2026-11-26): half-cheetah 1.9-2.2 s (MuJoCo) vs 11.2 s
# (rapier), ant 6.8-7.5 s vs 22.8-23.5 s; so about 17 min per 500-iteration half-cheetah run and
# 12 min per 100-iteration ant run on MuJoCo, 4.4 h for all eighteen (measured 2026-11-27, two
# half-cheetah runs side by side: 19-30 min per run, 1.5 h for the nine). Resumable: seeds with a
# finished run under OUT are skipped, interrupted ones resume from their newest checkpoint.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/resumable_runs.sh
source scripts/lib/resumable_runs.sh
SEEDS=${SEEDS:-"0 1 2"}
THRESHOLD=${THRESHOLD:-0}
BACKEND=${BACKEND:-mujoco}
OUT=${OUT:-runs/results-meta-rl-locomotion-$BACKEND}
ENVS=${*:-half-cheetah-fwd-back ant-random-direction}
case $BACKEND in
  mujoco)
    eval "$(scripts/setup_mujoco.sh)"
    features=(--features mujoco)
    suffix=
    ;;
  rapier)
    features=()
    suffix=_rapier
    ;;
  *)
    echo "unknown BACKEND '$BACKEND' (mujoco, rapier)" >&2
    exit 2
    ;;
esac
if [ -z "${BIN:-}" ]; then
  cargo build --release -p mbrl-cli "${features[@]}"
  BIN=target/release/mbrl-cli
fi
mkdir -p docs/results

for setting in $ENVS; do
  case $setting in
    half-cheetah-fwd-back) env=half-cheetah iterations=${ITERATIONS:-500} ;;
    ant-random-direction) env=ant iterations=${ITERATIONS:-100} ;;
    *)
      echo "unknown setting '$setting' (half-cheetah-fwd-back, ant-random-direction)" >&2
      exit 2
      ;;
  esac
  args=()
  # LABEL:ALGO:ESTIMATOR (empty: the algorithm's default estimator).
  for learner in promp:promp: maml-trpo:maml-trpo:maml e-maml-trpo:maml-trpo:e-maml; do
    IFS=: read -r label algo estimator <<<"$learner"
    extra=()
    [ -n "$estimator" ] && extra=(--set meta.estimator="$estimator")
    for seed in $SEEDS; do
      train_seed "$OUT/$setting/$label/$algo/$env" "$seed" "$iterations" "$BIN" \
        --config "configs/$algo/$setting.toml" --out "$OUT/$setting/$label" \
        --set run.iterations="$iterations" --set env.backend="$BACKEND" "${extra[@]}"
    done
    args+=("$label=$OUT/$setting/$label/$algo/$env")
  done
  "$BIN" plot "${args[@]}" --y post_update_return --threshold "$THRESHOLD" \
    --out "docs/results/meta_rl_$setting$suffix.png" \
    --title "$setting ($BACKEND): post-update return (mean +- sample std over seeds $SEEDS)" \
    | tee "docs/results/meta_rl_$setting$suffix.md"
done
