//! The MuJoCo backend (cargo feature `mujoco`, issue 7) against Gymnasium's MuJoCo
//! environments: the same initial state and actions give the same trajectory, rewards and
//! terminations.
//!
//! Fixtures: `scripts/record_mujoco_fixtures.py` (Gymnasium 1.2.2, MuJoCo 3.17.0 from PyPI,
//! the library `scripts/setup_mujoco.sh` installs for this build). Run with
//! `eval "$(scripts/setup_mujoco.sh)"; cargo test -p mbrl-envs --features mujoco --test
//! mujoco_gymnasium -- --nocapture` (the worst differences are printed).
//!
//! Both sides run MuJoCo 3.17.0 in f64 from the same f32-exact initial state with the same f32
//! actions. What differs is (a) our model text: the same physical values, but body frames
//! placed at the joints, capsules as `fromto` end points computed in f32, angles converted to
//! radians in f32 (a ~1e-8 relative change of the geometry), the ant's fixed `*_leg` bodies
//! merged into its torso; and (b) our f32 readout: observations rounded to f32 (one f32 step
//! is 9.5e-7 for a value in [8, 16), e.g. a velocity clipped at 10), and Gymnasium's mean
//! velocity `(x' - x) / dt`, which we compute from f32 positions (for |x| < 1 m an error up to
//! 1.2e-7 / dt: 1.5e-5 at the hopper's and walker's dt = 0.008 s). Without contacts, or with
//! few, (a) stays at the f32 rounding over whole episodes; the ant's and half-cheetah's
//! contact-rich gaits amplify it (as any 1e-7 perturbation: two Gymnasium runs whose initial
//! quaternions differ by 1e-7 part as fast), so those are compared over a prefix.

#![cfg(feature = "mujoco")]

use candle_core::{Device, Tensor};
use mbrl_core::env::Env;
use mbrl_envs::robots::env_core::{Robot, RobotModel};
use mbrl_envs::robots::mujoco;
use mbrl_envs::robots::RewardKind;
use serde_json::Value;

/// How one robot's fixture is replayed and compared.
struct Replay {
    /// File in `tests/fixtures/`.
    fixture: &'static str,
    /// Index of the end-of-step root x velocity in the observation.
    vx_index: usize,
    /// Gymnasium v5's control-cost weight.
    ctrl_cost_weight: f64,
    /// Largest allowed absolute difference of an observation element.
    obs_tolerance: f64,
    /// Largest allowed absolute difference of a reward (in Gymnasium's terms) or of the mean
    /// x velocity.
    reward_tolerance: f64,
    /// Whether Gymnasium's mean velocity reads the body position `xpos`, which `mj_step`
    /// computes before its last integration (Ant-v5): a window one physics step behind
    /// ours, so only the reward around it is compared, not the velocity.
    stale_xpos: bool,
    /// Steps compared per episode (an episode that ends earlier is compared to its end,
    /// termination included).
    match_steps: usize,
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_f64().expect("number") as f32)
        .collect()
}

fn load(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{path}: {e}; run scripts/record_mujoco_fixtures.py"));
    let fixture: Value = serde_json::from_str(&text).expect("fixture JSON");
    assert_eq!(fixture["mujoco"], "3.17.0");
    fixture
}

/// The displacement from the initial pose to `qpos` in the `nv` coordinates
/// `reset_to_state` takes: `qpos - init_qpos`, except that a free root's orientation
/// `qpos[3..7]` (the initial one is the identity) becomes its rotation vector.
fn displacement(qpos: &[f32], init_qpos: &[f32]) -> Vec<f32> {
    assert_eq!(qpos.len(), init_qpos.len());
    let dq: Vec<f64> = qpos
        .iter()
        .zip(init_qpos)
        .map(|(&q, &q0)| f64::from(q) - f64::from(q0))
        .collect();
    let free_root = init_qpos.len() > 7 && init_qpos[3..7] == [1.0, 0.0, 0.0, 0.0];
    if !free_root {
        return dq.iter().map(|&d| d as f32).collect();
    }
    let q: Vec<f64> = qpos[3..7].iter().map(|&x| f64::from(x)).collect();
    let s = (q[1] * q[1] + q[2] * q[2] + q[3] * q[3]).sqrt();
    let angle = 2.0 * s.atan2(q[0]);
    let mut out: Vec<f32> = dq[..3].iter().map(|&d| d as f32).collect();
    out.extend((1..4).map(|i| (q[i] / s * angle) as f32));
    out.extend(dq[7..].iter().map(|&d| d as f32));
    out
}

/// Replays every episode of `replay.fixture` on a fresh `make()` environment and asserts the
/// observations, rewards and terminations; returns the worst observation and reward
/// differences.
fn replay<M: RobotModel>(make: impl Fn() -> Robot<M>, replay: &Replay) -> (f64, f64) {
    let fixture = load(replay.fixture);
    let name = replay.fixture;
    let mut worst = (0f64, 0f64);
    let mut compared = 0;
    for episode in fixture["episodes"].as_array().expect("episodes") {
        let mut env = make();
        let dq = displacement(&floats(&episode["qpos"]), &floats(&episode["init_qpos"]));
        let obs0 = env.reset_to_state(&dq, &floats(&episode["qvel"])).unwrap();
        // Exact for the planar robots; the ant's quaternion goes through a rotation vector.
        for (i, (a, b)) in obs0.iter().zip(floats(&episode["obs0"])).enumerate() {
            assert!(
                (a - b).abs() <= 1e-6,
                "{name} obs0[{i}]: ours {a}, Gymnasium {b}"
            );
        }
        let actions = episode["actions"].as_array().expect("actions");
        let dt = f64::from(env.sim().control_dt());
        for (t, action) in actions.iter().enumerate().take(replay.match_steps) {
            let raw = floats(action);
            let x_before = f64::from(env.qpos()[0]);
            let step = env
                .step(&Tensor::new(raw.clone(), &Device::Cpu).unwrap())
                .unwrap();
            let obs: Vec<f32> = step.obs.to_vec1().unwrap();
            let expected = floats(&episode["observations"][t]);
            assert_eq!(obs.len(), expected.len(), "{name}: observation width");
            for (i, (a, b)) in obs.iter().zip(&expected).enumerate() {
                let d = f64::from((a - b).abs());
                worst.0 = worst.0.max(d);
                assert!(
                    d <= replay.obs_tolerance,
                    "{name} step {t} obs[{i}]: ours {a}, Gymnasium {b}"
                );
            }
            // The root x (not observed) and Gymnasium's mean x velocity over the step.
            let x = f64::from(env.qpos()[0]);
            let their_x = episode["x_positions"][t].as_f64().unwrap();
            worst.0 = worst.0.max((x - their_x).abs());
            assert!(
                (x - their_x).abs() <= replay.obs_tolerance,
                "{name} step {t} x: ours {x}, Gymnasium {their_x}"
            );
            let their_vx = episode["x_velocities"][t].as_f64().unwrap();
            if !replay.stale_xpos {
                let mean_vx = (x - x_before) / dt;
                worst.1 = worst.1.max((mean_vx - their_vx).abs());
                assert!(
                    (mean_vx - their_vx).abs() <= replay.reward_tolerance,
                    "{name} step {t} mean x velocity: ours {mean_vx}, Gymnasium {their_vx}"
                );
            }
            // Our reward in Gymnasium's terms: its mean x velocity in place of our end-of-step
            // one, the raw action's control cost in place of the clipped one's
            // (docs/robots.md), and Ant-v5's contact cost, which ours leaves out.
            let sq = |a: &[f32]| a.iter().map(|&u| f64::from(u).powi(2)).sum::<f64>();
            let clipped: Vec<f32> = raw.iter().map(|u| u.clamp(-1.0, 1.0)).collect();
            let ours = step.reward - f64::from(obs[replay.vx_index])
                + their_vx
                + replay.ctrl_cost_weight * (sq(&clipped) - sq(&raw))
                + episode["reward_contact"][t].as_f64().unwrap();
            let theirs = episode["rewards"][t].as_f64().unwrap();
            worst.1 = worst.1.max((ours - theirs).abs());
            assert!(
                (ours - theirs).abs() <= replay.reward_tolerance,
                "{name} step {t} reward: ours {ours}, Gymnasium {theirs}"
            );
            let gymnasium_terminated =
                t + 1 == actions.len() && episode["terminated"].as_bool().unwrap();
            assert_eq!(
                step.terminated, gymnasium_terminated,
                "{name} step {t}: terminated"
            );
            compared += 1;
        }
    }
    eprintln!(
        "{name}: {compared} steps compared, worst |obs diff| {:e}, worst |reward diff| {:e}",
        worst.0, worst.1
    );
    worst
}

/// 3 episodes of 100 steps, compared over 25 steps (1.25 s) at 1e-4: the trajectories agree
/// to the f32 rounding (~1e-7) until the first ground contacts (~step 13); over the first 25
/// steps the worst differences are 3.5e-5 (observation) and 2.9e-6 (reward); by step 30 a
/// contact that starts one MuJoCo step earlier or later lifts them to 1.6e-3, and they keep
/// growing.
#[test]
fn half_cheetah_v5_matches_gymnasium_half_cheetah_v5() {
    replay(
        || mujoco::half_cheetah(RewardKind::GymnasiumV5, None).unwrap(),
        &Replay {
            fixture: "mujoco_half_cheetah_v5.json",
            vx_index: 8,
            ctrl_cost_weight: 0.1,
            obs_tolerance: 1e-4,
            reward_tolerance: 1e-4,
            match_steps: 25,
            stale_xpos: false,
        },
    );
}

/// 6 episodes, every step to Gymnasium's termination (12 to 52 steps; 162 steps in all,
/// ground contacts and falls included): worst differences 1.2e-7 (observation) and 5.7e-7
/// (reward). Tolerances: 1e-5 for observations (ten f32 steps of a value near 10), 2e-5 for
/// rewards (the 1.5e-5 bound of the mean velocity from f32 positions).
#[test]
fn hopper_v5_matches_gymnasium_hopper_v5() {
    replay(
        || mujoco::hopper(RewardKind::GymnasiumV5, None).unwrap(),
        &Replay {
            fixture: "mujoco_hopper_v5.json",
            vx_index: 5,
            ctrl_cost_weight: 1e-3,
            obs_tolerance: 1e-5,
            reward_tolerance: 2e-5,
            match_steps: usize::MAX,
            stale_xpos: false,
        },
    );
}

/// 6 episodes, every step to Gymnasium's termination (15 to 36 steps; 128 steps in all):
/// worst differences 9.5e-7 (observation, one f32 step of a clipped velocity) and 1.6e-6
/// (reward). Tolerances as the hopper's.
#[test]
fn walker2d_v5_matches_gymnasium_walker2d_v5() {
    replay(
        || mujoco::walker2d(RewardKind::GymnasiumV5, None).unwrap(),
        &Replay {
            fixture: "mujoco_walker2d_v5.json",
            vx_index: 8,
            ctrl_cost_weight: 1e-3,
            obs_tolerance: 1e-5,
            reward_tolerance: 2e-5,
            match_steps: usize::MAX,
            stale_xpos: false,
        },
    );
}

/// 3 episodes of 100 steps (4 s each), all compared: no contacts, only MuJoCo's fluid
/// forces, so the trajectories stay at the f32 rounding: worst differences 9.5e-7
/// (observation) and 1.4e-6 (reward). Tolerance 1e-5 for both (dt = 0.04 s: the mean
/// velocity's f32 error is below 3e-6 for |x| < 1 m).
#[test]
fn swimmer_v5_matches_gymnasium_swimmer_v5() {
    replay(
        || mujoco::swimmer(RewardKind::GymnasiumV5, None).unwrap(),
        &Replay {
            fixture: "mujoco_swimmer_v5.json",
            vx_index: 3,
            ctrl_cost_weight: 1e-4,
            obs_tolerance: 1e-5,
            reward_tolerance: 1e-5,
            match_steps: usize::MAX,
            stale_xpos: false,
        },
    );
}

/// Gymnasium's `Ant-v5` with `include_cfrc_ext_in_observation=False` (our 27-entry
/// observation), its contact cost taken out of its reward. 3 episodes (100, 36 and 46 steps),
/// compared over 12 steps (0.6 s): the legs hit the ground at once (the ankles start outside
/// their range and snap down) and the initial quaternion reaches us as a rotation vector
/// (~1e-7 off), so the differences grow from the start: 9.5e-7 at step 0, 3.1e-6 by step
/// 11, 1.6e-5 at step 12, 1e-4 by step 18, order 1 by step 50 (where the terminations part:
/// two Gymnasium runs 1e-7 apart diverge as fast). Tolerance 1e-5 for observations, 1e-4
/// for rewards (the mean velocity divides position differences by dt = 0.05 s).
#[test]
fn ant_v5_matches_gymnasium_ant_v5() {
    replay(
        || mujoco::ant(RewardKind::GymnasiumV5, None).unwrap(),
        &Replay {
            fixture: "mujoco_ant_v5.json",
            vx_index: 13,
            ctrl_cost_weight: 0.5,
            obs_tolerance: 1e-5,
            reward_tolerance: 1e-5,
            match_steps: 12,
            stale_xpos: true,
        },
    );
}
