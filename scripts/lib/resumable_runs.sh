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

# checkpointed DIR SEED: prints a run directory of SEED under DIR that holds a checkpoint.
checkpointed() {
  local run
  for run in "$1"/*-s"$2"; do
    if compgen -G "$run/checkpoints/ckpt-*.json" >/dev/null; then
      echo "$run"
      return 0
    fi
  done
  return 1
}

# train_seed RUNS SEED ITERATIONS BIN train-args...: trains SEED unless RUNS already holds a
# finished run of it. An unfinished run of the seed with a checkpoint (stopped by Ctrl-C,
# SIGTERM or a kill) is continued with `--resume` (its own config, ITERATIONS iterations);
# other unfinished runs of the seed are removed first. So an interrupted script resumes where
# it stopped. RUNS is where `BIN train --out ...` puts the seed's run directories.
train_seed() {
  local runs=$1 seed=$2 iterations=$3 bin=$4 run other
  shift 4
  if finished "$runs" "$seed" "$iterations"; then
    echo "skipping seed $seed: finished run in $runs" >&2
    return 0
  fi
  if run=$(checkpointed "$runs" "$seed"); then
    for other in "$runs"/*-s"$seed"; do
      [ "$other" = "$run" ] || rm -rf "$other"
    done
    echo "resuming seed $seed from the newest checkpoint in $run" >&2
    "$bin" train --resume "$run" --set run.iterations="$iterations"
    return
  fi
  rm -rf "$runs"/*-s"$seed"
  "$bin" train "$@" --seed "$seed"
}
