# Shared by the results scripts (source it): resumable seeded training runs.
#
# finished DIR SEED ITERATIONS: whether DIR holds a run of SEED with ITERATIONS metrics rows.
finished() {
  local run
  for run in "$1"/*-s"$2"; do
    [ -f "$run/metrics.jsonl" ] && [ "$(wc -l <"$run/metrics.jsonl")" -ge "$3" ] && return 0
  done
  return 1
}

# train_seed RUNS SEED ITERATIONS BIN train-args...: trains SEED unless RUNS already holds a
# finished run of it; an unfinished run of the seed is removed first, so an interrupted script
# resumes where it stopped. RUNS is where `BIN train --out ...` puts the seed's run directories.
train_seed() {
  local runs=$1 seed=$2 iterations=$3 bin=$4
  shift 4
  if finished "$runs" "$seed" "$iterations"; then
    echo "skipping seed $seed: finished run in $runs" >&2
    return 0
  fi
  rm -rf "$runs"/*-s"$seed"
  "$bin" train "$@" --seed "$seed"
}
