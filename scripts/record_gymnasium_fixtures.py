#!/usr/bin/env python3
"""Record Gymnasium reference episodes for mbrl-envs' `pendulum` and `mountain-car-continuous`.

Usage (from the repository root):

    python3 scripts/record_gymnasium_fixtures.py

The script creates a virtual environment `.venv-fixtures/` (git-ignored), installs the pinned
Gymnasium and NumPy into it, re-runs itself inside it and writes

    crates/mbrl-envs/tests/fixtures/pendulum.json
    crates/mbrl-envs/tests/fixtures/mountain_car_continuous.json

Each file holds several episodes of `gymnasium.make(env_id)` (so with Gymnasium's TimeLimit):
the reset seed, the exact initial internal state (float64), the actions (float32, including
out-of-range values to exercise clipping), and every observation, reward, `terminated` and
`truncated`. `tests/gymnasium_fixtures.rs` replays the initial state and actions in Rust and
compares every step. Floats are written with Python's `repr`, which round-trips exactly.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

GYMNASIUM_VERSION = "1.2.2"
NUMPY_VERSION = "2.2.6"

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv-fixtures"
OUT_DIR = ROOT / "crates" / "mbrl-envs" / "tests" / "fixtures"


def ensure_venv():
    """Re-runs this script inside .venv-fixtures with the pinned packages installed."""
    python = VENV / "bin" / "python"
    if Path(sys.prefix).resolve() == VENV.resolve():
        return
    if not python.exists():
        subprocess.check_call([sys.executable, "-m", "venv", str(VENV)])
    subprocess.check_call(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            f"gymnasium=={GYMNASIUM_VERSION}",
            f"numpy=={NUMPY_VERSION}",
        ]
    )
    os.execv(str(python), [str(python), str(Path(__file__).resolve())] + sys.argv[1:])


def floats(values):
    return [float(v) for v in values]


def record(env_id, seed, policy, max_steps=None):
    """Runs one episode; `policy(t, obs)` returns a float32 action array."""
    import gymnasium as gym

    env = gym.make(env_id)
    obs, _ = env.reset(seed=seed)
    episode = {
        "seed": seed,
        "initial_state": floats(env.unwrapped.state),
        "initial_obs": floats(obs),
        "actions": [],
        "observations": [],
        "rewards": [],
        "terminated": [],
        "truncated": [],
    }
    t = 0
    while max_steps is None or t < max_steps:
        action = policy(t, obs)
        obs, reward, terminated, truncated, _ = env.step(action)
        episode["actions"].append(floats(action))
        episode["observations"].append(floats(obs))
        episode["rewards"].append(float(reward))
        episode["terminated"].append(bool(terminated))
        episode["truncated"].append(bool(truncated))
        t += 1
        if terminated or truncated:
            break
    env.close()
    return episode


def main():
    ensure_venv()
    import gymnasium
    import numpy as np

    def f32(x):
        return np.array([x], dtype=np.float32)

    def constant(value, name):
        return name, lambda t, obs: f32(value)

    def sinusoid(amplitude, period, name):
        return name, lambda t, obs: f32(amplitude * np.sin(2 * np.pi * t / period))

    def uniform(low, high, rng_seed, name):
        rng = np.random.default_rng(rng_seed)
        return name, lambda t, obs: rng.uniform(low, high, size=1).astype(np.float32)

    def energy_pumping(gain, name):
        # Push along the velocity, out of range (clipped to 1): reaches the flag.
        return name, lambda t, obs: f32(gain if obs[1] >= 0 else -gain)

    suites = {
        "pendulum.json": (
            "Pendulum-v1",
            [
                (0, constant(0.0, "zeros"), None),
                (1, constant(3.5, "constant +3.5 (clipped to +2)"), None),
                (2, sinusoid(3.0, 40, "3 sin(2 pi t / 40), clipped beyond 2"), None),
                (3, uniform(-4.0, 4.0, 123, "uniform(-4, 4), numpy seed 123"), None),
                (4, uniform(-2.0, 2.0, 7, "uniform(-2, 2), numpy seed 7"), None),
            ],
        ),
        "mountain_car_continuous.json": (
            "MountainCarContinuous-v0",
            [
                (0, energy_pumping(1.5, "+-1.5 along the velocity (reaches the flag)"), None),
                (1, energy_pumping(0.8, "+-0.8 along the velocity"), None),
                (2, uniform(-2.0, 2.0, 11, "uniform(-2, 2), numpy seed 11"), 300),
                (3, sinusoid(1.3, 100, "1.3 sin(2 pi t / 100), first 300 steps"), 300),
                (4, constant(0.0, "zeros (runs into the time limit)"), None),
            ],
        ),
    }

    OUT_DIR.mkdir(parents=True, exist_ok=True)
    for filename, (env_id, runs) in suites.items():
        episodes = []
        for seed, (name, policy), max_steps in runs:
            episode = record(env_id, seed, policy, max_steps)
            episode["actions_description"] = name
            episodes.append(episode)
        data = {
            "env_id": env_id,
            "gymnasium_version": gymnasium.__version__,
            "numpy_version": np.__version__,
            "generated_by": "scripts/record_gymnasium_fixtures.py",
            "episodes": episodes,
        }
        path = OUT_DIR / filename
        with open(path, "w") as f:
            json.dump(data, f, separators=(",", ":"))
            f.write("\n")
        steps = sum(len(e["rewards"]) for e in episodes)
        print(f"wrote {path.relative_to(ROOT)}: {len(episodes)} episodes, {steps} steps")


if __name__ == "__main__":
    main()
