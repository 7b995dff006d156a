#!/usr/bin/env python3
"""Record Gymnasium v5 MuJoCo reference episodes for mbrl-envs' optional `mujoco` backend (issue 7).

Usage (from the repository root):

    python3 scripts/record_mujoco_fixtures.py

The script creates a virtual environment `.venv-mujoco-fixtures/` (git-ignored), installs the
pinned Gymnasium, MuJoCo (the same 3.17.0 that `scripts/setup_mujoco.sh` installs for the Rust
build) and NumPy into it, re-runs itself inside it and writes

    crates/mbrl-envs/tests/fixtures/mujoco_half_cheetah_v5.json

with several episodes of `gymnasium.make("HalfCheetah-v5")`. Gymnasium's own reset noise comes
from NumPy's generator, which Rust does not reproduce, so each episode instead sets an initial
state drawn here with Gymnasium's noise distribution (`qpos = init_qpos + U(-0.1, 0.1)`,
`qvel = 0.1 N(0, 1)`), rounded to float32 so the Rust side (f32 API) starts from exactly the
same state, through `env.unwrapped.set_state`. Actions are float32, some outside [-1, 1] to
exercise clipping. Every observation and reward of every step is stored, with the root x
position. `tests/mujoco_gymnasium.rs` replays the state and actions on the MuJoCo backend and
compares. Floats are written with Python's `repr`, which round-trips exactly.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

GYMNASIUM_VERSION = "1.2.2"
MUJOCO_VERSION = "3.17.0"
NUMPY_VERSION = "2.2.6"

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv-mujoco-fixtures"
OUT_DIR = ROOT / "crates" / "mbrl-envs" / "tests" / "fixtures"

EPISODES = 3
STEPS = 100
ACTION_RANGE = 1.2


def ensure_venv():
    """Re-runs this script inside .venv-mujoco-fixtures with the pinned packages installed."""
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
            f"gymnasium[mujoco]=={GYMNASIUM_VERSION}",
            f"mujoco=={MUJOCO_VERSION}",
            f"numpy=={NUMPY_VERSION}",
        ]
    )
    os.execv(str(python), [str(python), str(Path(__file__).resolve())] + sys.argv[1:])


def floats(values):
    return [float(v) for v in values]


def record(env_id, seed, noise_scale):
    import gymnasium as gym
    import numpy as np

    env = gym.make(env_id)
    env.reset(seed=seed)
    base = env.unwrapped
    rng = np.random.default_rng(seed)
    nq, nv = base.model.nq, base.model.nv
    qpos = (base.init_qpos + rng.uniform(-noise_scale, noise_scale, nq)).astype(np.float32)
    qvel = (base.init_qvel + noise_scale * rng.standard_normal(nv)).astype(np.float32)
    base.set_state(qpos.astype(np.float64), qvel.astype(np.float64))
    episode = {
        "seed": seed,
        "init_qpos": floats(base.init_qpos),
        "qpos": floats(qpos),
        "qvel": floats(qvel),
        "obs0": floats(base._get_obs()),
        "actions": [],
        "observations": [],
        "rewards": [],
        "x_positions": [],
    }
    for _ in range(STEPS):
        action = rng.uniform(-ACTION_RANGE, ACTION_RANGE, env.action_space.shape).astype(np.float32)
        obs, reward, terminated, truncated, info = env.step(action)
        episode["actions"].append(floats(action))
        episode["observations"].append(floats(obs))
        episode["rewards"].append(float(reward))
        episode["x_positions"].append(float(base.data.qpos[0]))
        if terminated or truncated:
            break
    env.close()
    return episode


def main():
    ensure_venv()
    import gymnasium
    import mujoco

    OUT_DIR.mkdir(parents=True, exist_ok=True)
    fixture = {
        "env_id": "HalfCheetah-v5",
        "gymnasium": gymnasium.__version__,
        "mujoco": mujoco.__version__,
        "episodes": [record("HalfCheetah-v5", seed, 0.1) for seed in range(EPISODES)],
    }
    path = OUT_DIR / "mujoco_half_cheetah_v5.json"
    path.write_text(json.dumps(fixture) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
