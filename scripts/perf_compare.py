#!/usr/bin/env python3
"""Candle vs PyTorch on the same machine, in the same run (docs/performance.md, issue 5).

Alternates the Rust binaries `crates/mbrl-policy-opt/benches/side_by_side.rs`,
`crates/mbrl-maac/benches/actor_critic.rs` (SAC's and MAAC's updates) and
`crates/mbrl-adapt/benches/control_step.rs` (GrBAL's and ReBAL's control steps) with
`scripts/perf_torch.py` for `--rounds` rounds (both with `--threads` threads) and prints a
Markdown table of each side's time (the median of its per-round medians) and two candle/PyTorch
ratios: of those medians, and of each side's best round (less sensitive to a noisy neighbour
slowing one side's rounds). Alternating keeps both sides exposed to the same machine load.
It first prints the CPU model and both libraries' SGEMM rate (1024^3, the limit for these
shapes), so that every table names the machine it was measured on. The imagined-rollout step
and the Fisher-vector product are each compared with both PyTorch variants of `perf_torch.py`.

Usage (from the repository root; needs a Python with torch, e.g. .venv-bench):
    python scripts/perf_compare.py [--rounds 5] [--threads 2] [--python .venv-bench/bin/python]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys

# (candle workload, PyTorch workload, label, goal for the ratio)
WORKLOADS = [
    ("sgemm_1024", "sgemm_1024", "SGEMM 1024 x 1024 x 1024 (the limit)", None),
    (
        "ensemble_train_step",
        "ensemble_train_step",
        "ensemble train step, 5 x (23-512-512-17), batch 256, Adam",
        1.0,
    ),
    (
        "rollout_step",
        "rollout_step_own_member",
        "imagined-rollout step, 5 models, 500 states, step_rand + reward; PyTorch: each "
        "state through its own member (equal FLOPs)",
        1.0,
    ),
    (
        "rollout_step",
        "rollout_step_all_members",
        "the same; PyTorch: every member on every state, then a gather (MBRL-Lib's way, 5x "
        "the FLOPs)",
        None,
    ),
    (
        "policy_fwd_bwd",
        "policy_fwd_bwd",
        "policy 17-32-32-6 tanh, Gaussian log-lik, fwd + bwd, batch 20000",
        1.0,
    ),
    (
        "fisher_vector_product",
        "fisher_vector_product",
        "Fisher-vector product, same policy and batch, same algorithm (Gauss-Newton: "
        "forward-mode J v, one backward)",
        None,
    ),
    (
        "fisher_vector_product",
        "fisher_vector_product_double_backward",
        "the same product; PyTorch: double backward of the mean KL (a different algorithm, "
        "the usual PyTorch TRPO code)",
        None,
    ),
    (
        "sac_update",
        "sac_update",
        "SAC update, batch 256: 256-256 actor, twin 256-256 critics, one-step targets, "
        "temperature, Polyak",
        1.0,
    ),
    (
        "maac_actor_update",
        "maac_actor_update",
        "MAAC actor update, batch 256: H = 3 through 8 x (4 x 200) probabilistic members, "
        "5 terminal action samples, twin Q",
        1.0,
    ),
    (
        "grbal_step_mppi",
        "grbal_step_mppi",
        "GrBAL control step: inner step on 16 transitions through 3 x 512, then MPPI 500 x 10 "
        "(half-cheetah; 20 Hz leaves 50 ms)",
        1.0,
    ),
    (
        "grbal_step_random_shooting",
        "grbal_step_random_shooting",
        "the same with random shooting, 500 x 10 (the reference's planner)",
        1.0,
    ),
    (
        "rebal_step_mppi",
        "rebal_step_mppi",
        "ReBAL control step: a 256-unit GRU reads 16 transitions, then MPPI 500 x 10 in the "
        "context-conditioned 3 x 512 MLP (candle folds the context into the first layer's "
        "bias; PyTorch concatenates it to every input, the usual way)",
        1.0,
    ),
    (
        "rebal_step_mppi",
        "rebal_step_mppi_folded",
        "the same; PyTorch folds the context into the bias too (same algorithm)",
        None,
    ),
]

# The Rust benches (cargo package, bench target) whose JSON lines together cover WORKLOADS.
RUST_BENCHES = [
    ("mbrl-policy-opt", "side_by_side"),
    ("mbrl-maac", "actor_critic"),
    ("mbrl-adapt", "control_step"),
]

SGEMM_FLOP = 2 * 1024**3


def cpu_model():
    """The CPU's model name from /proc/cpuinfo."""
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def run(cmd, env):
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
    return {r["name"]: r["median_ms"] for r in map(json.loads, filter(None, out.splitlines()))}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--measure", default="3")
    args = parser.parse_args()
    # The CLI's thread defaults (crates/mbrl-cli/src/threads.rs): candle's element-wise pool off.
    env = dict(os.environ, RAYON_NUM_THREADS=str(args.threads), CANDLE_NUM_THREADS="1")
    cargos = [["cargo", "bench", "-q", "-p", p, "--bench", b, "--"] for p, b in RUST_BENCHES]
    for cargo in cargos:
        subprocess.run(cargo[:-1] + ["--no-run"], env=env, check=True)
    timing = ["--measure", args.measure]

    def run_rust(extra):
        times = {}
        for cargo in cargos:
            times.update(run(cargo + timing + extra, env))
        return times

    torch_cmd = [args.python, "scripts/perf_torch.py", "--threads", str(args.threads)]
    print(f"CPU: {cpu_model()}, {os.cpu_count()} logical CPUs; {args.threads} threads each")
    only_sgemm = ["--only", "sgemm_1024"]
    rates = [run(cargos[0] + timing + only_sgemm, env), run(torch_cmd + timing + only_sgemm, env)]
    candle_rate, torch_rate = (SGEMM_FLOP / r["sgemm_1024"] / 1e6 for r in rates)
    print(
        f"SGEMM 1024^3, the limit for these shapes: candle {candle_rate:.0f} GFLOP/s, "
        f"PyTorch {torch_rate:.0f} GFLOP/s"
    )
    print()
    rust, torch = [], []
    for r in range(args.rounds):
        rust.append(run_rust([]))
        torch.append(run(torch_cmd + timing, env))
        print(f"round {r + 1}/{args.rounds}: candle {rust[-1]} torch {torch[-1]}", file=sys.stderr)
    print("| workload | candle (ms) | PyTorch (ms) | candle / PyTorch | best rounds | goal |")
    print("|---|---|---|---|---|---|")
    for ours, theirs, label, goal in WORKLOADS:
        c = statistics.median(r[ours] for r in rust)
        t = statistics.median(r[theirs] for r in torch)
        best = min(r[ours] for r in rust) / min(r[theirs] for r in torch)
        goal = f"<= {goal}" if goal is not None else "-"
        print(f"| {label} | {c:.2f} | {t:.2f} | {c / t:.2f} | {best:.2f} | {goal} |")

if __name__ == "__main__":
    main()
