//! `mountain-car-continuous` passes `check_env`, terminates with the +100 bonus at the flag and
//! charges the unclipped action. Exactness against Gymnasium is checked in
//! `gymnasium_fixtures.rs`.

mod common;

use mbrl_core::env::vector;
use mbrl_core::Env;
use mbrl_envs::mountain_car_continuous::{MountainCarContinuous, HORIZON};

const NAME: &str = "mountain-car-continuous";

#[test]
fn passes_check_env() {
    common::passes_check_env(NAME, None);
}

#[test]
fn deterministic_under_a_seed() {
    common::deterministic_under_a_seed(NAME);
}

#[test]
fn ten_thousand_random_steps_stay_finite() {
    common::random_steps_stay_finite(NAME, 10_000);
}

#[test]
fn reward_charges_the_unclipped_action_and_dynamics_use_the_clipped_one() {
    let mut env = MountainCarContinuous::new().unwrap();
    assert_eq!(env.spec().max_episode_steps, Some(HORIZON));
    let mut clipped = MountainCarContinuous::new().unwrap();
    env.set_state([-0.5, 0.0]).unwrap();
    clipped.set_state([-0.5, 0.0]).unwrap();
    let big = env.step(&vector(&[3.0]).unwrap()).unwrap();
    let one = clipped.step(&vector(&[1.0]).unwrap()).unwrap();
    assert_eq!(
        big.obs.to_vec1::<f32>().unwrap(),
        one.obs.to_vec1::<f32>().unwrap()
    );
    assert!((big.reward + 0.9).abs() < 1e-12, "{}", big.reward);
    assert!((one.reward + 0.1).abs() < 1e-15);
}

#[test]
fn reaching_the_flag_terminates_with_the_bonus() {
    let mut env = MountainCarContinuous::new().unwrap();
    env.set_state([0.44, 0.05]).unwrap();
    let step = env.step(&vector(&[0.5]).unwrap()).unwrap();
    assert!(step.terminated && !step.truncated);
    assert!((step.reward - (100.0 - 0.025)).abs() < 1e-12);
    let tf = env.task_functions();
    let obs = vector(&[0.44, 0.05]).unwrap().unsqueeze(0).unwrap();
    let act = vector(&[0.5]).unwrap().unsqueeze(0).unwrap();
    let next = step.obs.unsqueeze(0).unwrap();
    assert_eq!(
        tf.terminated(&obs, &act, &next)
            .unwrap()
            .to_vec1::<f32>()
            .unwrap(),
        vec![1.0]
    );
    let r = tf
        .reward(&obs, &act, &next)
        .unwrap()
        .to_vec1::<f32>()
        .unwrap()[0];
    assert!((r as f64 - step.reward).abs() < 1e-5);
}

#[test]
fn the_left_wall_stops_the_car() {
    let mut env = MountainCarContinuous::new().unwrap();
    env.set_state([-1.19, -0.07]).unwrap();
    let step = env.step(&vector(&[-1.0]).unwrap()).unwrap();
    assert_eq!(step.obs.to_vec1::<f32>().unwrap(), vec![-1.2, 0.0]);
}

#[test]
fn set_state_rejects_states_outside_the_box() {
    let mut env = MountainCarContinuous::new().unwrap();
    assert!(env.set_state([0.7, 0.0]).is_err());
    assert!(env.set_state([0.0, 0.08]).is_err());
    assert!(env.set_state([f64::NAN, 0.0]).is_err());
}
