#!/bin/sh
# cargo's runner for this workspace (.cargo/config.toml): runs a test, bench or binary with
# candle's thread settings, unless the caller set them.
# - RAYON_NUM_THREADS: physical cores. Without it candle re-reads /proc/cpuinfo on every matrix
#   product (the ProMP point-corners test binary took 294 s instead of 93 s, most of it system
#   time).
# - CANDLE_NUM_THREADS=1: candle's spinning element-wise pool otherwise competes with rayon's
#   matmul pool for the same cores (docs/performance.md).
# The CLI applies the same defaults itself (crates/mbrl-cli/src/threads.rs).
if [ -z "${RAYON_NUM_THREADS:-}" ]; then
  RAYON_NUM_THREADS=$(lscpu -p=Core,Socket 2>/dev/null | grep -v '^#' | sort -u | wc -l)
  [ "${RAYON_NUM_THREADS:-0}" -gt 0 ] 2>/dev/null || RAYON_NUM_THREADS=$(nproc 2>/dev/null || echo 1)
  export RAYON_NUM_THREADS
fi
export CANDLE_NUM_THREADS="${CANDLE_NUM_THREADS:-1}"
exec "$@"
