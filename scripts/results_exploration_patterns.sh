#!/usr/bin/env bash
# Thesis Fig. 16 (Sec. 6.7.3): pre-update exploration and post-update exploitation on
# point-corners of meta-policies trained with MAML-TRPO and the LVC, MAML and E-MAML estimators
# (configs/maml-trpo/point-corners.toml), with WITH_PROMP=1 also ProMP
# (configs/promp/point-corners.toml), for SEEDS (default 0 1 2), JOBS (default 2) runs at a time. Per-run outputs and logs go to RUNS
# (default runs/exploration_patterns); finished runs (their *_returns.csv exists there) are
# skipped, so an interrupted invocation resumes.
# Writes docs/results/exploration_patterns.csv (trajectories), exploration_patterns_seed<S>.png,
# exploration_patterns_returns.csv, exploration_patterns_training.csv and
# exploration_patterns.md (tables; a "## Reading" section already in it is kept).
#
# Usage: scripts/results_exploration_patterns.sh   (60 iterations of MAML-TRPO took about 15
#        minutes per run, two runs at a time, on 2 cores shared with other jobs)
#        SEEDS="0" ITERATIONS=5 OUT=/tmp/ep scripts/results_exploration_patterns.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SEEDS=${SEEDS:-"0 1 2"}
JOBS=${JOBS:-2}
OUT=${OUT:-docs/results}
ITERATIONS=${ITERATIONS:-}
export RAYON_NUM_THREADS=${RAYON_NUM_THREADS:-$(nproc)} CANDLE_NUM_THREADS=${CANDLE_NUM_THREADS:-1}
nice -n 10 cargo build --release -p mbrl-meta --example exploration_patterns
bin=${CARGO_TARGET_DIR:-target}/release/examples/exploration_patterns
runs=${RUNS:-runs/exploration_patterns}
mkdir -p "$runs"

# learner|config|extra arguments (the row order of the figure and the tables).
LEARNERS=(
  "LVC-TRPO|configs/maml-trpo/point-corners.toml|--estimator lvc"
  "MAML-TRPO|configs/maml-trpo/point-corners.toml|--estimator maml"
  "E-MAML-TRPO|configs/maml-trpo/point-corners.toml|--estimator e-maml"
)
if [ "${WITH_PROMP:-0}" = 1 ]; then LEARNERS+=("ProMP|configs/promp/point-corners.toml|"); fi
commands="$runs/commands.txt" todo="$runs/todo.txt"
: > "$commands"
: > "$todo"
for seed in $SEEDS; do
  for entry in "${LEARNERS[@]}"; do
    IFS='|' read -r learner config extra <<< "$entry"
    line="$bin train --config $config $extra --learner $learner --seed $seed"
    line="$line${ITERATIONS:+ --iterations $ITERATIONS} --out $runs"
    echo "$line" >> "$commands"
    [ -f "$runs/exploration_patterns_${learner}_seed${seed}_returns.csv" ] || echo "$line" >> "$todo"
  done
done
# Each command logs to its own file; xargs runs JOBS of them at a time.
tr '\n' '\0' < "$todo" | xargs -0 -r -P "$JOBS" -I{} sh -c \
  'log="$0/$(echo "$1" | sed "s/.*--learner \([^ ]*\) --seed \([0-9]*\).*/\1_seed\2/").log";
   nice -n 10 $1 2> "$log" && tail -n 6 "$log"' "$runs" {}

merge() { # merge <suffix> <output>: the per-run CSVs of every learner and seed, one header
  local first=1
  : > "$2"
  for seed in $SEEDS; do
    for entry in "${LEARNERS[@]}"; do
      local file="$runs/exploration_patterns_${entry%%|*}_seed${seed}$1"
      if [ $first = 1 ]; then cat "$file" >> "$2"; first=0; else tail -n +2 "$file" >> "$2"; fi
    done
  done
}
merge .csv "$OUT/exploration_patterns.csv"
merge _returns.csv "$OUT/exploration_patterns_returns.csv"
merge _training.csv "$OUT/exploration_patterns_training.csv"
for seed in $SEEDS; do
  "$bin" plot --csv "$OUT/exploration_patterns.csv" --seed "$seed" \
    --png "$OUT/exploration_patterns_seed${seed}.png"
done

# Tables: per learner, mean and sample std over seeds of each seed's mean over the four
# corners (evaluation), and of each seed's mean over the last 10 training iterations.
table() { # table <csv> <value column a> <value column b>: rows keyed by learner, seed
  awk -F, -v a="$2" -v b="$3" '
    NR > 1 { k = $1 SUBSEP $2; if (!(k in n)) { order[++m] = k }; n[k]++; A[k] += $a; B[k] += $b }
    END {
      for (i = 1; i <= m; i++) {
        split(order[i], kk, SUBSEP); l = kk[1]
        if (!(l in cnt)) { lorder[++nl] = l }
        x = A[order[i]] / n[order[i]]; y = B[order[i]] / n[order[i]]
        cnt[l]++; sa[l] += x; qa[l] += x * x; sb[l] += y; qb[l] += y * y; seeds[l] = seeds[l] " " kk[2]
      }
      for (j = 1; j <= nl; j++) {
        l = lorder[j]; c = cnt[l]
        ma = sa[l] / c; mb = sb[l] / c
        va = c > 1 ? (qa[l] - c * ma * ma) / (c - 1) : 0; vb = c > 1 ? (qb[l] - c * mb * mb) / (c - 1) : 0
        printf "| %s | %.2f +- %.2f | %.2f +- %.2f | %.2f |%s |\n", l, ma, sqrt(va > 0 ? va : 0), mb,
          sqrt(vb > 0 ? vb : 0), mb - ma, seeds[l]
      }
    }' "$1"
}
per_seed() { # per_seed <csv> <value column a> <value column b>
  awk -F, -v a="$2" -v b="$3" '
    NR > 1 { k = $1 SUBSEP $2; if (!(k in n)) { order[++m] = k }; n[k]++; A[k] += $a; B[k] += $b }
    END { for (i = 1; i <= m; i++) { split(order[i], kk, SUBSEP)
      printf "| %s | %s | %.2f | %.2f |\n", kk[1], kk[2], A[order[i]] / n[order[i]], B[order[i]] / n[order[i]] } }' "$1"
}
# Last-10-iteration rows: the final iteration of each run minus 9 and later.
tail10="$runs/training_last10.csv"
awk -F, 'NR == FNR { if (FNR > 1 && $3 > last[$1 FS $2]) last[$1 FS $2] = $3; next }
  FNR == 1 || $3 > last[$1 FS $2] - 10' \
  "$OUT/exploration_patterns_training.csv" "$OUT/exploration_patterns_training.csv" > "$tail10"
md="$OUT/exploration_patterns.md"
reading=$(sed -n '/^## Reading/,$p' "$md" 2>/dev/null || true)
{
  echo "# Exploration patterns on point-corners (thesis Fig. 16, Sec. 6.7.3)"
  echo
  echo "Generated by \`scripts/results_exploration_patterns.sh\` at commit $(git rev-parse --short HEAD)"
  echo "(seeds: $SEEDS${ITERATIONS:+, iterations: $ITERATIONS}). Commands, run from the repository root:"
  echo
  echo '```sh'
  sed "s#$bin#exploration_patterns#" "$commands"
  echo '```'
  echo
  echo "(\`exploration_patterns\` is \`cargo run --release -p mbrl-meta --example exploration_patterns --\`.)"
  echo
  echo "## Returns on the four corners after training"
  echo
  echo "Per seed: one adaptation per corner (20 pre-update rollouts, three inner steps, 20"
  echo "post-update rollouts), mean over the 4 x 20 episodes; then mean +- sample std over seeds."
  echo
  echo "| learner | pre-update | post-update | post - pre | seeds |"
  echo "|---|---|---|---|---|"
  table "$OUT/exploration_patterns_returns.csv" 4 5
  echo
  echo "## Returns of the last 10 training iterations"
  echo
  echo "Per seed: mean over the last 10 iterations of the training batch's pre- and post-update"
  echo "returns (20 random corners x 20 rollouts each); then mean +- sample std over seeds."
  echo
  echo "| learner | pre-update | post-update | post - pre | seeds |"
  echo "|---|---|---|---|---|"
  table "$tail10" 4 5
  echo
  echo "## Per seed (four corners after training)"
  echo
  echo "| learner | seed | pre-update | post-update |"
  echo "|---|---|---|---|"
  per_seed "$OUT/exploration_patterns_returns.csv" 4 5
  echo
  echo "Wall time per run (under the load of the machine at the time):"
  echo
  for seed in $SEEDS; do
    for entry in "${LEARNERS[@]}"; do
      awk -F, -v l="${entry%%|*}" -v s="$seed" '$1 == l && $2 == s { t = $7 } END { if (t != "") printf "- %s seed %s: %.0f s training\n", l, s, t }' \
        "$OUT/exploration_patterns_training.csv"
    done
  done
  if [ -n "$reading" ]; then echo; echo "$reading"; fi
} > "$md"
echo "wrote $md"
