#!/usr/bin/env python3
"""Per-seed table of the asynchronous wall-clock study (docs/results/README.md, issue 25).

Reads the committed per-run metrics `<data>/<label>-s<seed>.csv` (scripts/results_async_wall_clock.sh
writes them, with a `wall_clock_s` column) and prints a Markdown table, one row per label:
the seeds whose evaluation return reaches the threshold, the real steps and wall-clock seconds
to the first evaluation at or above it (mean +- sample std over the seeds that reach it), the
return at `--at-steps` real steps and at the end, the run's wall-clock seconds (mean +- sample
std over all seeds), and per seed the asynchronous runs' policy steps, model epochs and last
staleness where the metrics have them.

Usage: scripts/async_seed_table.py --data docs/results/async_wall_clock [--threshold -300]
           [--at-steps 5000] LABEL...
"""

import argparse
import csv
import glob
import os
import re
import statistics
import sys


def mean_std(values, digits=0):
    """`mean +- sample std` (n - 1), or the single value."""
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} +- {statistics.stdev(values):.{digits}f}"


def runs(data, label):
    """(seed, rows) of each committed run of `label`, by seed."""
    found = []
    for path in glob.glob(os.path.join(data, f"{label}-s*.csv")):
        match = re.fullmatch(re.escape(label) + r"-s(\d+)\.csv", os.path.basename(path))
        if match:
            with open(path, newline="") as f:
                found.append((int(match.group(1)), list(csv.DictReader(f))))
    return sorted(found)


def row(label, seeds, threshold, at_steps):
    reached = []
    at, final, wall, per_seed = [], [], [], {"policy_steps": [], "model_epochs": [], "staleness": []}
    for _, rows in seeds:
        evaluated = [r for r in rows if r.get("eval_return", "") not in ("", "nan")]
        first = next((r for r in evaluated if float(r["eval_return"]) >= threshold), None)
        if first is not None:
            reached.append((float(first["env_steps"]), float(first["wall_clock_s"])))
        at += [float(r["eval_return"]) for r in evaluated if float(r["env_steps"]) == at_steps]
        final.append(float(evaluated[-1]["eval_return"]))
        wall.append(float(rows[-1]["wall_clock_s"]))
        for key, values in per_seed.items():
            if rows[-1].get(key, "") != "":
                values.append(float(rows[-1][key]))
    cells = [
        label,
        f"{len(reached)} of {len(seeds)}",
        mean_std([s for s, _ in reached]),
        mean_std([w for _, w in reached]),
        mean_std(at, 1),
        mean_std(final, 1),
        mean_std(wall),
    ]
    for key, values in per_seed.items():
        digits = 1 if key == "staleness" else 0
        cells.append(", ".join(f"{v:.{digits}f}" for v in values) if values else "-")
    return "| " + " | ".join(cells) + " |"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--threshold", type=float, default=-300.0)
    parser.add_argument("--at-steps", type=float, default=5000.0)
    parser.add_argument("labels", nargs="+")
    args = parser.parse_args()
    t = f"{args.threshold:g}"
    print(
        f"| method | seeds reaching {t} | real steps to reach | wall-clock s to reach | "
        f"return at {args.at_steps:g} steps | final return | wall-clock s of the run | "
        "policy steps | model epochs | staleness |"
    )
    print("|---" * 10 + "|")
    for label in args.labels:
        seeds = runs(args.data, label)
        if not seeds:
            print(f"no runs of {label} in {args.data}", file=sys.stderr)
            continue
        print(row(label, seeds, args.threshold, args.at_steps))


if __name__ == "__main__":
    main()
