#!/usr/bin/env bash
# Thesis Sec. 9.4.2-9.4.3: returns of GrBAL, ReBAL, MB (mb-mpc) and MB+DE (mb-de) on held-out
# perturbations of the rapier half-cheetah and ant, SEEDS seeds each (default 0 1 2), ITERATIONS
# iterations of 5 real 1000-step episodes (default 5, 25k real steps; the thesis's budget is
# 50 iterations, 250k steps, out of reach of this machine for 4 methods x 3 seeds: see the
# measured cost below).
# Families (arguments; default disabled-joint): disabled-joint, sloped-terrain and pier on the
# half-cheetah, crippled-leg on the ant, each from configs/grbal/<robot>-<family>.toml; the
# held-out tasks are the family's own (`mbrl-cli envs --env ROBOT --task-family FAMILY`).
# Each run is evaluated (2 episodes) in each held-out task and in a switch at step 500 from the
# unperturbed robot to the held-out task; the table (mean +- sample std over seeds) goes to
# docs/results/adapt_locomotion_<family>.md, one CSV row per run and test to the .csv, and each
# run's evaluation return after every iteration to <family>_curves.csv.
# The study outlives a session: the CSVs are committed, and a (method, seed) with rows in the
# .csv is not trained again, so each session adds the runs it finished (seed by seed, all
# methods of a seed first) and the table says how many seeds each cell holds.
#
# Usage: scripts/results_adapt_locomotion.sh [disabled-joint sloped-terrain pier crippled-leg]
#        SEEDS="0 1 2" ITERATIONS=5 METHODS="grbal rebal mb-mpc mb-de" OUT=/tmp/runs BIN=...
# Measured cost (Intel Xeon, one thread each, two runs side by side, 2026-12-03; first 2
# iterations of seed 0):
#   ReBAL  iteration 1 (random data) 71 s (fit 16 s); iteration 2: 266 s collecting (53 ms per
#          control step), fit 2 s (early stop), 1000-step evaluation about 55 s;
#   GrBAL  iteration 1 238 s, of which the second-order meta-training fit 194 s (700 steps,
#          0.28 s each); iteration 2: 220 s collecting (44 ms per control step), fit 384 s
#          (1400 steps: the fit grows with the data while the early stop does not cut it).
#   GrBAL  iteration 3 (15k steps): 1143 s, 267 s collecting and the rest fitting (2026-12-03,
#          with CI runs beside it part of the time).
# AMD EPYC (Zen 4), one thread each, two runs side by side, 2026-12-07, whole 5-iteration runs:
#   ReBAL 1801 s, MB (mb-mpc) 1577 s, MB+DE (mb-de) 1598 s (about 280-310 s collecting per
#   iteration), each plus about 4 minutes for the held-out evaluations.
# GrBAL's fit was the largest cost (it grows with the data) until its inner step was written
# in factored form (docs/performance.md, mbrl-adapt): on the AMD EPYC, one thread beside a CI
# run, seed 1's fits took 21.6 s (iteration 1, 700 meta steps) and 46.9 s (iteration 2, 1400)
# instead of minutes, so every method's run is now mostly its collection: about 30 minutes
# plus 4 of evaluation, 2 core-hours per seed of a family, 6 for a family's 3 seeds.
# Intel Xeon, 2026-12-08, one thread each with two other runs or a CI run sharing the 2 cores:
#   whole 5-iteration runs 1691 s (MB+DE) to 2888 s (GrBAL), each plus 4-5 minutes of evaluation.
# Resumable: seeds with a finished run under OUT are skipped, interrupted ones resume from their
# newest checkpoint (one per iteration).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/resumable_runs.sh
source scripts/lib/resumable_runs.sh
SEEDS=${SEEDS:-"0 1 2"}
ITERATIONS=${ITERATIONS:-5}
METHODS=${METHODS:-"grbal rebal mb-mpc mb-de"}
OUT=${OUT:-runs/results-adapt-locomotion}
FAMILIES=${*:-disabled-joint}
if [ -z "${BIN:-}" ]; then
  cargo build --release -p mbrl-cli
  BIN=target/release/mbrl-cli
fi
mkdir -p docs/results

# config FAMILY: the study's config of the family (configs/grbal/<robot>-<family>.toml).
config() {
  local found=(configs/grbal/*-"$1".toml)
  [ -f "${found[0]}" ] || { echo "no config configs/grbal/*-$1.toml" >&2 && return 1; }
  echo "${found[0]}"
}

# robot FAMILY: the environment of the family's config.
robot() {
  sed -n 's/^name = "\(.*\)"/\1/p' "$(config "$1")" | head -1
}

# held_out FAMILY: the family's held-out task labels, one per line, as the environment lists
# them.
held_out() {
  "$BIN" envs --env "$(robot "$1")" --task-family "$1"
}

# eval_return RUN ARGS...: the mean return printed by `eval`.
eval_return() {
  local run=$1
  shift
  "$BIN" eval --run "$run" --episodes 2 "$@" | sed -n 's/^eval_return \([-0-9.e+]*\) .*/\1/p'
}

# table FAMILY: the family's CSV as a markdown table, to stdout and to its .md.
table() {
  {
    echo "| method | test | return (mean +- sample std over seeds) | seeds |"
    echo "|---|---|---|---|"
    awk -F, 'NR > 1 { k = $1 "|" $3; n[k]++; s[k] += $4; q[k] += $4 * $4 }
      END {
        for (k in n) {
          m = s[k] / n[k]; v = n[k] > 1 ? (q[k] - n[k] * m * m) / (n[k] - 1) : 0
          split(k, p, "|")
          printf "| %s | %s | %.1f +- %.1f | %d |\n", p[1], p[2], m, sqrt(v > 0 ? v : 0), n[k]
        }
      }' "docs/results/adapt_locomotion_$1.csv" | sort
  } | tee "docs/results/adapt_locomotion_$1.md"
}

for family in $FAMILIES; do
  config=$(config "$family")
  csv=docs/results/adapt_locomotion_$family.csv
  curves=docs/results/adapt_locomotion_${family}_curves.csv
  [ -f "$csv" ] || echo "method,seed,test,return" >"$csv"
  [ -f "$curves" ] || echo "method,seed,iteration,env_steps,eval_return" >"$curves"
  for seed in $SEEDS; do
    for method in $METHODS; do
      if grep -q "^$method,$seed," "$csv"; then
        echo "skipping $method seed $seed: its results are in $csv" >&2
        continue
      fi
      runs=$OUT/$family/$method/$(robot "$family")
      train_seed "$runs" "$seed" "$ITERATIONS" "$BIN" --config "$config" --out "$OUT/$family" \
        --set algo="\"$method\"" --set run.iterations="$ITERATIONS"
      run=$(ls -d "$runs"/*-s"$seed" | tail -1)
      rows=()
      while read -r task; do
        rows+=("$method,$seed,$task,$(eval_return "$run" --task "$task")")
        rows+=("$method,$seed,switch at 500 to $task,$(eval_return "$run" --switch-step 500 \
          --switch-task "$task")")
      done < <(held_out "$family")
      # Appended once the run and all its tests are done: a row means a finished run.
      printf '%s\n' "${rows[@]}" >>"$csv"
      awk -F, -v m="$method" -v s="$seed" 'NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }
        { print m "," s "," $c["iteration"] "," $c["env_steps"] "," $c["eval_return"] }' \
        "$run/metrics.csv" >>"$curves"
      table "$family" >/dev/null
    done
  done
  table "$family"
done
