#!/usr/bin/env bash
# The thesis's Fig. 14 on a 2-core budget: MAML with a VPG (Adam) outer step and each of the
# four meta-gradient estimators (LVC, DiCE, MAML, E-MAML) on point1d-goal (the dense-reward
# task of Fig. 15 and 17; configs/promp/point1d-goal.toml: 20 tasks x 20 rollouts, one inner
# step of 0.1, Adam 0.01), SEEDS seeds each (default 0 1 2), ITERATIONS meta-iterations
# (default 100). The thesis runs it on MuJoCo locomotion tasks. Writes
# docs/results/meta_vpg_estimators.{png,csv} (post-update return, mean +- sample std over seeds) and
# docs/results/meta_vpg_estimators_pre_update.{png,csv}.
#
# Usage: scripts/results_meta_vpg_estimators.sh    (about 10 s per run on 2 cores)
#        SEEDS="0 1 2" ITERATIONS=100 OUT=/tmp/runs BIN=path/to/mbrl-cli scripts/results_meta_vpg_estimators.sh
# Resumable: seeds with a finished run under OUT are skipped, interrupted ones resume from
# their newest checkpoint.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/resumable_runs.sh
source scripts/lib/resumable_runs.sh
SEEDS=${SEEDS:-"0 1 2"}
ITERATIONS=${ITERATIONS:-100}
OUT=${OUT:-runs/results-meta-vpg-estimators}
CONFIG=configs/promp/point1d-goal.toml
ESTIMATORS="lvc dice maml e-maml"
if [ -z "${BIN:-}" ]; then
  cargo build --release -p mbrl-cli
  BIN=target/release/mbrl-cli
fi

for estimator in $ESTIMATORS; do
  for seed in $SEEDS; do
    train_seed "$OUT/$estimator/maml-vpg/point1d-goal" "$seed" "$ITERATIONS" "$BIN" \
      --config "$CONFIG" --out "$OUT/$estimator" --set algo=maml-vpg \
      --set meta.estimator="$estimator" --set run.iterations="$ITERATIONS"
  done
done

mkdir -p docs/results
args=()
for estimator in $ESTIMATORS; do
  args+=("$estimator=$OUT/$estimator/maml-vpg/point1d-goal")
done
for y in post_update_return pre_update_return; do
  name=meta_vpg_estimators
  [ "$y" = pre_update_return ] && name=meta_vpg_estimators_pre_update
  "$BIN" plot "${args[@]}" --y "$y" --out "docs/results/$name.png" \
    --title "MAML-VPG on point1d-goal: $y by meta-gradient estimator (mean +- sample std, seeds $SEEDS)" \
    >/dev/null
done
echo "wrote docs/results/meta_vpg_estimators{,_pre_update}.{png,csv}"
