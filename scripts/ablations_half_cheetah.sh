#!/usr/bin/env bash
# The thesis's Fig. 5 and Appendix A.4 ablations of ME-TRPO on the rapier half-cheetah (A.2
# reward, horizon 100), on top of configs/me-trpo/half-cheetah-short.toml (capped phases, see
# that file), SEEDS seeds each (default 0 1 2), ITERATIONS iterations of 3000 real steps
# (default 5):
#   models      1 vs 5 vs 10 ensemble members (Fig. 5)
#   sampling    the six ensemble sampling modes of Appendix A.4.1
#   validation  the policy-phase judges of Appendix A.4.2: ensemble, one model, the TRPO
#               batches' mean, the real environment (oracle), each allowed up to JUDGED_UPDATES
#               (default 200) updates per phase, against 50 and 5 fixed updates
# Each group writes a plot, its CSV and a table (real steps to a mean evaluation return of
# THRESHOLD, default 0, and the final mean and sample std (n - 1) over seeds; for sampling and
# validation also TRPO updates per phase and the imagined-minus-real return) to docs/results/.
# Groups can be run separately:
#
# Usage: scripts/ablations_half_cheetah.sh [models|sampling|validation]...   (default: all three)
#        SEEDS="0 1 2" ITERATIONS=5 OUT=/tmp/runs BIN=path/to/mbrl-cli scripts/ablations_half_cheetah.sh models
# Cost on an idle 2-core machine: 3-7 minutes per run at the defaults (more members, longer),
# up to ~12 for the judged validation runs; about 4 h for all three groups.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/resumable_runs.sh
source scripts/lib/resumable_runs.sh
SEEDS=${SEEDS:-"0 1 2"}
ITERATIONS=${ITERATIONS:-5}
THRESHOLD=${THRESHOLD:-0}
JUDGED_UPDATES=${JUDGED_UPDATES:-200}
OUT=${OUT:-runs/ablations-half-cheetah}
GROUPS_TO_RUN=${*:-models sampling validation}
CONFIG=configs/me-trpo/half-cheetah-short.toml
if [ -z "${BIN:-}" ]; then
  cargo build --release -p mbrl-cli
  BIN=target/release/mbrl-cli
fi
mkdir -p docs/results

# run GROUP LABEL --set ...: SEEDS runs of one variant under $OUT/GROUP/LABEL (resumable, see
# scripts/lib/resumable_runs.sh).
run() {
  local group=$1 label=$2
  shift 2
  for seed in $SEEDS; do
    train_seed "$OUT/$group/$label/me-trpo/half-cheetah" "$seed" "$ITERATIONS" "$BIN" \
      --config "$CONFIG" --out "$OUT/$group/$label" --set run.iterations="$ITERATIONS" "$@"
  done
}

# plot GROUP LABEL...: one curve per variant, mean and sample std over seeds; LABEL=DIR takes the
# variant's runs from another group's directory DIR.
plot() {
  local group=$1
  shift
  local args=()
  for label in "$@"; do
    case $label in
      *=*) args+=("$label/me-trpo/half-cheetah") ;;
      *) args+=("$label=$OUT/$group/$label/me-trpo/half-cheetah") ;;
    esac
  done
  "$BIN" plot "${args[@]}" --out "docs/results/half_cheetah_ablation_$group.png" \
    --threshold "$THRESHOLD" --title "ME-TRPO half-cheetah ablation: $group (mean +- sample std over seeds $SEEDS)" \
    | tee "docs/results/half_cheetah_ablation_$group.md"
}

# column_mean COLUMN RUNS: the mean of COLUMN of metrics.csv over every iteration of every run
# (seed) under RUNS.
column_mean() {
  awk -F, -v column="$1" '
    FNR == 1 { for (i = 1; i <= NF; i++) if ($i == column) c = i; next }
    { sum += $c; n++ }
    END { printf "%.1f", sum / n }' "$2"/*/metrics.csv
}

# diagnostics GROUP LABEL...: appends to the group's table, per variant (LABEL or LABEL=DIR as
# for plot), the mean TRPO updates per policy phase and the mean imagined-minus-real return
# (the phase's last imagined batch return minus the real evaluation return after it: how much
# the policy exploits its models), over all iterations and seeds.
diagnostics() {
  local group=$1 label runs
  shift
  {
    echo
    echo "| variant | TRPO updates per phase | imagined - real return |"
    echo "|---|---|---|"
    for label in "$@"; do
      case $label in
        *=*) runs="${label#*=}/me-trpo/half-cheetah" label=${label%%=*} ;;
        *) runs="$OUT/$group/$label/me-trpo/half-cheetah" ;;
      esac
      updates=$(column_mean policy_updates "$runs")
      gap=$(awk -v a="$(column_mean imagined_return "$runs")" \
        -v b="$(column_mean eval_return "$runs")" 'BEGIN { printf "%.0f", a - b }')
      echo "| $label | $updates | $gap |"
    done
  } | tee -a "docs/results/half_cheetah_ablation_$group.md"
}

for group in $GROUPS_TO_RUN; do
  case $group in
    models)
      for k in 1 5 10; do run models "models-$k" --set model.members="$k"; done
      plot models models-1 models-5 models-10
      ;;
    sampling)
      # step_rand is the default, so its runs are the models group's 5-member runs.
      run models models-5 --set model.members=5
      modes="model_mean_std model_mean model_med eps_rand one_model"
      for mode in $modes; do run sampling "$mode" --set me_trpo.model_env.sampling="$mode"; done
      # shellcheck disable=SC2086
      plot sampling step_rand="$OUT/models/models-5" $modes
      # shellcheck disable=SC2086
      diagnostics sampling step_rand="$OUT/models/models-5" $modes
      ;;
    validation)
      # The judges may run up to JUDGED_UPDATES updates per phase (the short config's cap of 50
      # binds before any judge stops a phase, which would make them all equal to no_early_50).
      for judge in ensemble one_model trpo_mean real; do
        run validation "$judge" --set me_trpo.validation="$judge" \
          --set me_trpo.max_policy_iterations="$JUDGED_UPDATES"
      done
      run validation no_early_50 --set me_trpo.validation=none --set me_trpo.max_policy_iterations=50
      run validation no_early_5 --set me_trpo.validation=none --set me_trpo.max_policy_iterations=5
      plot validation ensemble one_model trpo_mean real no_early_50 no_early_5
      diagnostics validation ensemble one_model trpo_mean real no_early_50 no_early_5
      ;;
    *)
      echo "unknown group '$group' (models, sampling, validation)" >&2
      exit 2
      ;;
  esac
done
