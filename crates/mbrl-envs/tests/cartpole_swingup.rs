//! `cartpole-swingup` passes `check_env`, keeps the hanging equilibrium, swings with the
//! period of its linearisation, and rewards the upright pole.

mod common;

use std::f64::consts::PI;

use mbrl_core::env::vector;
use mbrl_core::Env;
use mbrl_envs::cartpole_swingup::{CartpoleSwingup, HORIZON};

const NAME: &str = "cartpole-swingup";

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
fn hanging_at_rest_stays_at_rest_and_upright_at_the_origin_earns_the_full_reward() {
    let mut env = CartpoleSwingup::new().unwrap();
    assert_eq!(env.spec().max_episode_steps, Some(HORIZON));
    let zero = vector(&[0.0]).unwrap();
    env.set_state([0.0; 4]).unwrap();
    let step = env.step(&zero).unwrap();
    assert_eq!(env.state(), [0.0; 4]);
    // Tip at (0, -l), target (0, l): d^2 = 4 l^2, r = exp(-4).
    assert!((step.reward - (-4f64).exp()).abs() < 1e-12);

    env.set_state([0.0, 0.0, PI, 0.0]).unwrap();
    let step = env.step(&zero).unwrap();
    assert!(step.reward > 1.0 - 1e-9, "{}", step.reward);
}

#[test]
fn pushing_right_moves_the_cart_right_and_swings_the_pole_back() {
    let mut env = CartpoleSwingup::new().unwrap();
    env.set_state([0.0; 4]).unwrap();
    let step = env.step(&vector(&[5.0]).unwrap()).unwrap();
    let [x, xd, th, thd] = env.state();
    assert!(
        x > 0.0 && xd > 0.0 && th < 0.0 && thd < 0.0,
        "{:?}",
        env.state()
    );
    // The action is clipped to 1, so its cost is 0.01.
    let l = 0.5;
    let d2 = (x + l * th.sin()).powi(2) + (l * (1.0 + th.cos())).powi(2);
    assert!((step.reward - ((-d2 / (l * l)).exp() - 0.01)).abs() < 1e-12);
}

#[test]
fn a_small_swing_has_the_period_of_a_uniform_rod_on_a_free_cart() {
    // Linearising PILCO's equations about th = 0 without force or friction-induced motion
    // (xd = 0 initially, b xd stays small) gives thdd = -w^2 th with
    // w^2 = 6 (m_c + m_p) g / (l (4 (m_c + m_p) - 3 m_p)) = 6 * 9.82 / (0.5 * 2.5).
    let w = (6.0 * 9.82 / (0.5 * 2.5f64)).sqrt();
    let period = 2.0 * PI / w;
    let mut env = CartpoleSwingup::new().unwrap();
    env.set_state([0.0, 0.0, 1e-3, 0.0]).unwrap();
    let zero = vector(&[0.0]).unwrap();
    // Count zero crossings of th over 4 s.
    let mut crossings = Vec::new();
    let mut prev = env.state()[2];
    for t in 1..=80 {
        env.step(&zero).unwrap();
        let th = env.state()[2];
        if prev > 0.0 && th <= 0.0 {
            crossings.push(t as f64 * 0.05);
        }
        prev = th;
    }
    let measured = (crossings[crossings.len() - 1] - crossings[0]) / (crossings.len() - 1) as f64;
    assert!(
        (measured - period).abs() < 0.06,
        "period {measured} vs {period}"
    );
}

#[test]
fn set_state_rejects_non_finite_states() {
    let mut env = CartpoleSwingup::new().unwrap();
    assert!(env.set_state([0.0, f64::INFINITY, 0.0, 0.0]).is_err());
}
