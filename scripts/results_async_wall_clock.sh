#!/usr/bin/env bash
# Thesis Fig. 24-25, Fig. 27 and the threads-vs-Redis comparison of Ch. 8, at a small scale:
# Pendulum-v1 with data collection paced at the pendulum's own 0.05 s per step (a 200-step
# rollout lasts 10 s), 10k real steps, SEEDS seeds (default 0 1 2), every run from
# configs/async/pendulum-wall-clock.toml. Parts (PARTS, default all, in this order):
#   fig24   asynchronous ME-TRPO, ME-PPO, MB-MPO (workers on threads) against the same learners
#           run sequentially (1000 real steps per iteration, the asynchronous runs' 5 rollouts)
#           and model-free TRPO / PPO (100k real steps);
#   redis   asynchronous ME-TRPO with a redis-server on loopback and every worker a separate
#           `mbrl-cli worker` process;
#   fig27   asynchronous ME-TRPO with the model worker's moving-average weight 0.9 and 0.999
#           (0.99 is fig24's run) and the data collected twice as fast and half as fast.
# The sequential learners do not sleep: their wall-clock is their measured compute time plus
# 0.05 s per real step, exact because collection and learning do not overlap there; the
# asynchronous runs sleep for real. Wall-clock numbers mean something only on an otherwise idle
# machine: pause other work while this runs.
#
# Outputs, in docs/results/: async_wall_clock/<label>-s<seed>.csv (each finished run's metrics
# with a `wall_clock_s` column: the raw data, committed, so the study outlives a session: a
# (label, seed) with a CSV there is not trained again), and from them the figures and tables
# (mean +- sample std over seeds): async_wall_clock_pendulum.{png,csv} (return against
# wall-clock) with its threshold table (_threshold.md: wall-clock to reach THRESHOLD, default
# -300), async_steps_pendulum.{png,csv} (return against real steps) with its table,
# async_redis_pendulum.{png,csv,md} and async_fig27_pendulum.{png,csv,md}, and per part a
# per-seed table (_seeds.md, scripts/async_seed_table.py: seeds reaching THRESHOLD, real steps
# and wall-clock to reach it, returns, the workers' step counts and staleness).
#
# Usage: scripts/results_async_wall_clock.sh
#        SEEDS="0 1 2" PARTS="fig24 redis fig27" ITERATIONS=10 OUT=/tmp/runs BIN=...
# Resumable: a run interrupted on the threads backend resumes from its newest checkpoint; an
# interrupted Redis run starts again.
# Measured cost, per seed, on an idle 2-core machine (fig24: seeds 0-1 on an AMD EPYC, seed 2
# on an Intel Xeon; redis: all on an Intel Xeon; fig27: seeds 0-1 on an Intel Xeon, seed 2 on an
# AMD EPYC; 2026-12-06/07): fig24 about 33 min (each asynchronous run 502 s, which is its
# simulated sampling time; sequential ME-TRPO 100-127 s of compute, ME-PPO 136-249 s, MB-MPO
# 288-347 s; model-free TRPO and PPO 1-3 s each, plus evaluation); redis about 9 min (one
# 502 s run plus start-up); fig27 about 38 min (502 s, 502 s, 251 s and 1004 s).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/resumable_runs.sh
source scripts/lib/resumable_runs.sh
SEEDS=${SEEDS:-"0 1 2"}
PARTS=${PARTS:-"fig24 redis fig27"}
OUT=${OUT:-runs/results-async-wall-clock}
THRESHOLD=${THRESHOLD:--300}
BIN=${BIN:-target/release/mbrl-cli}
ITERATIONS=${ITERATIONS:-10}
# Simulated real time per step (the pendulum's own); a smaller value only for a smoke test.
STEP_SECONDS=${STEP_SECONDS:-0.05}
config=configs/async/pendulum-wall-clock.toml
# Where the figures and tables go, and the committed per-run CSVs (elsewhere for a smoke test).
RESULTS=${RESULTS:-docs/results}
data=${DATA:-$RESULTS/async_wall_clock}
if [ "$BIN" = target/release/mbrl-cli ]; then
  cargo build --release -p mbrl-cli
fi
mkdir -p "$data"

# algo LABEL: the registered algorithm a label runs.
algo() {
  case $1 in
    me-ppo) echo me-trpo ;;
    async-me-trpo-*) echo async-me-trpo ;;
    *) echo "$1" ;;
  esac
}

# extra LABEL: the label's `train` arguments besides algo.
extra() {
  case $1 in
    me-ppo) echo '--set me_trpo.optimiser="ppo"' ;;
    trpo | ppo) echo "--set run.iterations=$((10 * ITERATIONS)) --set run.eval_every=5" ;;
    async-me-trpo-ma0.9) echo "--set async.moving_average_weight=0.9" ;;
    async-me-trpo-ma0.999) echo "--set async.moving_average_weight=0.999" ;;
    async-me-trpo-fast) echo "--set async.time_scale=0.5" ;;
    async-me-trpo-slow) echo "--set async.time_scale=2.0" ;;
  esac
}

# members PART: the labels of a part of the study.
members() {
  case $1 in
    fig24) echo "async-me-trpo async-me-ppo async-mb-mpo me-trpo me-ppo mb-mpo trpo ppo" ;;
    redis) echo "async-me-trpo-redis" ;;
    fig27) echo "async-me-trpo-ma0.9 async-me-trpo-ma0.999 async-me-trpo-fast async-me-trpo-slow" ;;
    *) echo "unknown part $1" >&2 && return 1 ;;
  esac
}

# keep LABEL SEED RUN: the run's metrics with the wall-clock column, into $data.
keep() {
  local paced=0
  case $1 in async-*) paced=1 ;; esac
  awk -F, -v OFS=, -v paced="$paced" -v dt="$STEP_SECONDS" '
    NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; print $0, "wall_clock_s"; next }
    { w = $c["wall_time_s"] + (paced ? 0 : $c["env_steps"] * dt); print $0, w }' \
    "$3/metrics.csv" >"$data/$1-s$2.csv.tmp"
  mv "$data/$1-s$2.csv.tmp" "$data/$1-s$2.csv"
}

# train_threads LABEL SEED: one run on the threads backend (or sequential), resumable.
train_threads() {
  local label=$1 seed=$2 algo iterations=$ITERATIONS extra_args
  algo=$(algo "$label")
  read -ra extra_args <<<"$(extra "$label")"
  case $label in trpo | ppo) iterations=$((10 * ITERATIONS)) ;; esac
  train_seed "$OUT/$label/$algo/pendulum" "$seed" "$iterations" "$BIN" --config "$config" \
    --out "$OUT/$label" --set "algo=\"$algo\"" --set run.iterations="$ITERATIONS" \
    --set async.step_seconds="$STEP_SECONDS" "${extra_args[@]}"
  keep "$label" "$seed" "$(ls -d "$OUT/$label/$algo/pendulum"/*-s"$seed" | tail -1)"
}

# train_redis SEED: asynchronous ME-TRPO with a fresh redis-server and three worker processes.
train_redis() {
  local seed=$1 runs=$OUT/async-me-trpo-redis dir port pids=()
  dir=$(mktemp -d)
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  redis-server --bind 127.0.0.1 --port "$port" --save "" --appendonly no --dir "$dir" \
    >"$dir/redis.log" 2>&1 &
  local server=$!
  until redis-cli -p "$port" ping >/dev/null 2>&1; do sleep 0.1; done
  local extra=(--set 'async.backend="redis"' --set "async.redis_url=\"redis://127.0.0.1:$port\""
    --set "async.run_id=\"s$seed\"" --set run.checkpoint_every=0
    --set run.iterations="$ITERATIONS" --set async.step_seconds="$STEP_SECONDS")
  rm -rf "$runs"/async-me-trpo/pendulum/*-s"$seed"
  "$BIN" train --config "$config" --out "$runs" --seed "$seed" "${extra[@]}" &
  local coordinator=$!
  for role in data model policy; do
    "$BIN" worker --role "$role" --config "$config" "${extra[@]}" >"$dir/$role.log" 2>&1 &
    pids+=($!)
  done
  wait "$coordinator"
  wait "${pids[@]}"
  kill "$server"
  wait "$server" || true
  rm -rf "$dir"
  keep async-me-trpo-redis "$seed" "$(ls -d "$runs"/async-me-trpo/pendulum/*-s"$seed" | tail -1)"
}

# plot NAME X SCALE LABELS...: the committed runs of LABELS as docs/results/NAME.{png,csv}
# against column X (SCALE: log or linear), with the threshold table in NAME_threshold.md.
plot() {
  local name=$1 x=$2 scale=$3 views label csv
  shift 3
  views=$(mktemp -d)
  local dirs=()
  for label in "$@"; do
    for csv in "$data/$label"-s[0-9]*.csv; do
      [ -f "$csv" ] || continue
      mkdir -p "$views/$label/$(basename "$csv" .csv)"
      cp "$csv" "$views/$label/$(basename "$csv" .csv)/metrics.csv"
      touch "$views/$label/$(basename "$csv" .csv)/config.toml"
    done
    [ -d "$views/$label" ] && dirs+=("$label=$views/$label")
  done
  if [ ${#dirs[@]} -eq 0 ]; then
    echo "no runs for $name yet" >&2
    rm -rf "$views"
    return 0
  fi
  local log=()
  [ "$scale" = log ] && log=(--log-x)
  "$BIN" plot "${dirs[@]}" --out "$RESULTS/$name.png" --x "$x" --threshold "$THRESHOLD" \
    "${log[@]}" --title "Pendulum-v1, data at 0.05 s per step: mean +- sample std over seeds" \
    >"$RESULTS/${name}_threshold.md"
  rm -rf "$views"
  cat "$RESULTS/${name}_threshold.md"
}

for part in $PARTS; do
  for seed in $SEEDS; do
    for label in $(members "$part"); do
      if [ -f "$data/$label-s$seed.csv" ]; then
        echo "skipping $label seed $seed: $data/$label-s$seed.csv exists" >&2
      elif [ "$label" = async-me-trpo-redis ]; then
        train_redis "$seed"
      else
        train_threads "$label" "$seed"
      fi
    done
  done
done

fig24="async-me-trpo me-trpo async-me-ppo me-ppo async-mb-mpo mb-mpo trpo ppo"
# shellcheck disable=SC2086
plot async_wall_clock_pendulum wall_clock_s log $fig24
# shellcheck disable=SC2086
plot async_steps_pendulum env_steps log $fig24
plot async_redis_pendulum wall_clock_s linear async-me-trpo async-me-trpo-redis
plot async_fig27_pendulum wall_clock_s linear async-me-trpo async-me-trpo-ma0.9 \
  async-me-trpo-ma0.999 async-me-trpo-fast async-me-trpo-slow

# seeds NAME LABELS...: the per-seed table of LABELS (scripts/async_seed_table.py) as NAME_seeds.md.
seeds() {
  local name=$1
  shift
  python3 scripts/async_seed_table.py --data "$data" --threshold "$THRESHOLD" "$@" \
    >"$RESULTS/${name}_seeds.md"
  cat "$RESULTS/${name}_seeds.md"
}
# shellcheck disable=SC2086
seeds async_wall_clock_pendulum $fig24
seeds async_redis_pendulum async-me-trpo async-me-trpo-redis
seeds async_fig27_pendulum async-me-trpo async-me-trpo-ma0.9 async-me-trpo-ma0.999 \
  async-me-trpo-fast async-me-trpo-slow
