#!/usr/bin/env bash
# The thesis's Fig. 13 comparison on a 2-core budget: ProMP vs MAML-TRPO vs E-MAML-TRPO on the
# rapier half-cheetah forward/backward and ant random-direction families
# (configs/{promp,maml-trpo}/{half-cheetah-fwd-back,ant-random-direction}.toml: 20 tasks x 10
# rollouts of 100 steps per iteration), SEEDS seeds each (default 0 1 2). Writes
# docs/results/meta_rl_<env>.{png,csv} (post-update return against real steps, mean +- std
# over seeds) and docs/results/meta_rl_<env>.md (steps to THRESHOLD). Envs run separately:
#
# Usage: scripts/results_meta_rl_locomotion.sh [half-cheetah-fwd-back|ant-random-direction]...
#        SEEDS="0 1 2" ITERATIONS=100 OUT=/tmp/runs BIN=path/to/mbrl-cli scripts/results_meta_rl_locomotion.sh half-cheetah-fwd-back
# Cost on 2 cores: about 12 s per half-cheetah iteration (~20 min per run, ~3 h for the nine),
# about 4x that for ant (its physics step is 4x slower). Resumable: seeds with a finished run under OUT are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/resumable_runs.sh
source scripts/lib/resumable_runs.sh
SEEDS=${SEEDS:-"0 1 2"}
ITERATIONS=${ITERATIONS:-100}
THRESHOLD=${THRESHOLD:-0}
OUT=${OUT:-runs/results-meta-rl-locomotion}
ENVS=${*:-half-cheetah-fwd-back ant-random-direction}
if [ -z "${BIN:-}" ]; then
  cargo build --release -p mbrl-cli
  BIN=target/release/mbrl-cli
fi
mkdir -p docs/results

for setting in $ENVS; do
  case $setting in
    half-cheetah-fwd-back) env=half-cheetah ;;
    ant-random-direction) env=ant ;;
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
      train_seed "$OUT/$setting/$label/$algo/$env" "$seed" "$ITERATIONS" "$BIN" \
        --config "configs/$algo/$setting.toml" --out "$OUT/$setting/$label" \
        --set run.iterations="$ITERATIONS" "${extra[@]}"
    done
    args+=("$label=$OUT/$setting/$label/$algo/$env")
  done
  "$BIN" plot "${args[@]}" --y post_update_return --threshold "$THRESHOLD" \
    --out "docs/results/meta_rl_$setting.png" \
    --title "$setting: post-update return (mean +- std over seeds $SEEDS)" \
    | tee "docs/results/meta_rl_$setting.md"
done
