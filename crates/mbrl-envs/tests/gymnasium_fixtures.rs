//! `pendulum` and `mountain-car-continuous` reproduce Gymnasium's `Pendulum-v1` and
//! `MountainCarContinuous-v0` step for step.
//!
//! The fixtures were recorded by `scripts/record_gymnasium_fixtures.py` (Gymnasium and NumPy
//! versions are stored in each file): several seeds and fixed action sequences, including
//! out-of-range actions. Each episode is replayed from Gymnasium's exact initial state with
//! the same actions, under the same time limit, and every observation, reward and flag is
//! compared. Observations and rewards must agree within `1e-5` (absolute, `f32` terms).

use std::path::PathBuf;

use mbrl_core::env::{vector, Env, TimeLimit};
use mbrl_envs::mountain_car_continuous::MountainCarContinuous;
use mbrl_envs::pendulum::Pendulum;
use serde_json::Value;

const TOLERANCE: f64 = 1e-5;

fn load(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

/// Largest observation and reward differences over all episodes of a fixture.
#[derive(Debug, Default)]
struct Deviation {
    obs: f64,
    reward: f64,
    steps: usize,
}

/// Replays every episode of `fixture` on `make(initial_state)` (an env already put in that
/// state, with its initial observation) wrapped in Gymnasium's time limit.
fn replay<E: Env>(
    fixture: &Value,
    horizon: usize,
    make: impl Fn(&[f64]) -> (E, Vec<f32>),
) -> Deviation {
    let mut dev = Deviation::default();
    for (i, ep) in fixture["episodes"].as_array().unwrap().iter().enumerate() {
        let (env, initial_obs) = make(&floats(&ep["initial_state"]));
        for (a, b) in initial_obs.iter().zip(floats(&ep["initial_obs"])) {
            dev.obs = dev.obs.max((*a as f64 - b).abs());
        }
        let mut env = TimeLimit::new(env, horizon);
        let actions = ep["actions"].as_array().unwrap();
        for (t, action) in actions.iter().enumerate() {
            let action: Vec<f32> = floats(action).iter().map(|&a| a as f32).collect();
            let step = env.step(&vector(&action).unwrap()).unwrap();
            let expected_obs = floats(&ep["observations"][t]);
            for (a, b) in step.obs.to_vec1::<f32>().unwrap().iter().zip(&expected_obs) {
                dev.obs = dev.obs.max((*a as f64 - b).abs());
            }
            let expected_reward = ep["rewards"][t].as_f64().unwrap();
            dev.reward = dev.reward.max((step.reward - expected_reward).abs());
            assert_eq!(
                (step.terminated, step.truncated),
                (
                    ep["terminated"][t].as_bool().unwrap(),
                    ep["truncated"][t].as_bool().unwrap()
                ),
                "episode {i} step {t}: flags differ"
            );
            assert!(
                dev.obs <= TOLERANCE && dev.reward <= TOLERANCE,
                "episode {i} step {t}: {dev:?}\n obs {:?} vs {expected_obs:?}\n reward {} vs \
                 {expected_reward}",
                step.obs.to_vec1::<f32>().unwrap(),
                step.reward
            );
            dev.steps += 1;
        }
    }
    dev
}

#[test]
fn pendulum_matches_gymnasium_pendulum_v1() {
    let fixture = load("pendulum.json");
    assert_eq!(fixture["env_id"], "Pendulum-v1");
    let dev = replay(&fixture, 200, |state| {
        let mut env = Pendulum::new(false).unwrap();
        let obs = env.set_state([state[0], state[1]]).unwrap();
        (env, obs.to_vec1::<f32>().unwrap())
    });
    assert_eq!(dev.steps, 1000);
    println!(
        "pendulum: max |obs diff| {:e}, max |reward diff| {:e}",
        dev.obs, dev.reward
    );
}

#[test]
fn mountain_car_continuous_matches_gymnasium_mountain_car_continuous_v0() {
    let fixture = load("mountain_car_continuous.json");
    assert_eq!(fixture["env_id"], "MountainCarContinuous-v0");
    let episodes = fixture["episodes"].as_array().unwrap();
    assert!(episodes
        .iter()
        .any(|e| e["terminated"].as_array().unwrap().last().unwrap() == true));
    assert!(episodes
        .iter()
        .any(|e| e["truncated"].as_array().unwrap().last().unwrap() == true));
    let dev = replay(&fixture, 999, |state| {
        let mut env = MountainCarContinuous::new().unwrap();
        let obs = env.set_state([state[0], state[1]]).unwrap();
        (env, obs.to_vec1::<f32>().unwrap())
    });
    assert!(dev.steps > 1000);
    println!(
        "mountain car: max |obs diff| {:e}, max |reward diff| {:e}",
        dev.obs, dev.reward
    );
}
