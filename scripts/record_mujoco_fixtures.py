#!/usr/bin/env python3
"""Record Gymnasium v5 MuJoCo reference episodes for mbrl-envs' optional `mujoco` backend (issue 7).

Usage (from the repository root):

    python3 scripts/record_mujoco_fixtures.py [ENV_ID ...]   # default: every env

The script creates a virtual environment `.venv-mujoco-fixtures/` (git-ignored), installs the
pinned Gymnasium, MuJoCo (the same 3.17.0 that `scripts/setup_mujoco.sh` installs for the Rust
build) and NumPy into it, re-runs itself inside it and writes one file per environment into `crates/mbrl-envs/tests/fixtures/`:

    mujoco_half_cheetah_v5.json  mujoco_hopper_v5.json  mujoco_walker2d_v5.json
    mujoco_swimmer_v5.json       mujoco_ant_v5.json

each with several episodes of `gymnasium.make(env_id)`. Gymnasium's own reset noise comes from
NumPy's generator, which Rust does not reproduce, so each episode instead sets an initial state
drawn here with the environment's own noise distribution (`reset_model` of its `*_v5.py`:
`qpos = init_qpos + U(-s, s)`; `qvel = init_qvel + U(-s, s)` for Hopper, Walker2d and Swimmer,
`s N(0, 1)` for HalfCheetah and Ant; `s` its `reset_noise_scale`), rounded to float32 so the
Rust side (f32 API) starts from the same state, through `env.unwrapped.set_state`. The ant's
free-joint quaternion is normalised before rounding (MuJoCo normalises it anyway; the Rust side
sets orientations as rotation vectors). Ant-v5 is made with `include_cfrc_ext_in_observation=False`
(the 27-entry observation of mbrl-envs' `ant-v5`; its reward still subtracts Gymnasium's contact
cost, stored per step as `reward_contact`). Actions are float32, some outside [-1, 1] to
exercise clipping. Every observation and reward of every step is stored, with the root x
position, Gymnasium's `info["x_velocity"]` (the mean velocity over the control step) and
whether the episode was terminated (an episode ends at Gymnasium's termination or after
`STEPS` steps). `tests/mujoco_gymnasium.rs` replays the state and actions on the MuJoCo backend
and compares. Floats are written with Python's `repr`, which round-trips exactly.
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


# env id -> (fixture file stem, episodes, reset_noise_scale, qvel noise "uniform" or "normal",
# make kwargs). Hopper and Walker2d fall within ~25 steps under random actions: more episodes.
ENVS = {
    "HalfCheetah-v5": ("mujoco_half_cheetah_v5", EPISODES, 0.1, "normal", {}),
    "Hopper-v5": ("mujoco_hopper_v5", 2 * EPISODES, 5e-3, "uniform", {}),
    "Walker2d-v5": ("mujoco_walker2d_v5", 2 * EPISODES, 5e-3, "uniform", {}),
    "Swimmer-v5": ("mujoco_swimmer_v5", EPISODES, 0.1, "uniform", {}),
    "Ant-v5": (
        "mujoco_ant_v5",
        EPISODES,
        0.1,
        "normal",
        {"include_cfrc_ext_in_observation": False},
    ),
}


def record(env_id, seed, noise_scale, qvel_noise, kwargs):
    import gymnasium as gym
    import numpy as np

    env = gym.make(env_id, **kwargs)
    env.reset(seed=seed)
    base = env.unwrapped
    rng = np.random.default_rng(seed)
    nq, nv = base.model.nq, base.model.nv
    qpos = base.init_qpos + rng.uniform(-noise_scale, noise_scale, nq)
    if qvel_noise == "normal":
        qvel = base.init_qvel + noise_scale * rng.standard_normal(nv)
    else:
        qvel = base.init_qvel + rng.uniform(-noise_scale, noise_scale, nv)
    if nq == nv + 1:
        # A free root: qpos[3:7] is its orientation quaternion.
        qpos[3:7] /= np.linalg.norm(qpos[3:7])
    qpos, qvel = qpos.astype(np.float32), qvel.astype(np.float32)
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
        "x_velocities": [],
        "reward_contact": [],
        "terminated": False,
    }
    for _ in range(STEPS):
        action = rng.uniform(-ACTION_RANGE, ACTION_RANGE, env.action_space.shape).astype(np.float32)
        obs, reward, terminated, truncated, info = env.step(action)
        episode["actions"].append(floats(action))
        episode["observations"].append(floats(obs))
        episode["rewards"].append(float(reward))
        episode["x_positions"].append(float(base.data.qpos[0]))
        episode["x_velocities"].append(float(info["x_velocity"]))
        episode["reward_contact"].append(float(info.get("reward_contact", 0.0)))
        if terminated or truncated:
            episode["terminated"] = bool(terminated)
            break
    env.close()
    return episode


def main():
    ensure_venv()
    import gymnasium
    import mujoco

    OUT_DIR.mkdir(parents=True, exist_ok=True)
    only = set(sys.argv[1:])
    for env_id, (stem, episodes, noise_scale, qvel_noise, kwargs) in ENVS.items():
        if only and env_id not in only:
            continue
        fixture = {
            "env_id": env_id,
            "make_kwargs": kwargs,
            "gymnasium": gymnasium.__version__,
            "mujoco": mujoco.__version__,
            "reset_noise_scale": noise_scale,
            "episodes": [
                record(env_id, seed, noise_scale, qvel_noise, kwargs) for seed in range(episodes)
            ],
        }
        path = OUT_DIR / f"{stem}.json"
        path.write_text(json.dumps(fixture) + "\n")
        lengths = [len(e["actions"]) for e in fixture["episodes"]]
        print(f"wrote {path} (episode lengths {lengths})")


if __name__ == "__main__":
    main()
