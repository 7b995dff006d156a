//! `double-integrator` passes `check_env`, and its closed-form expected return and gradient
//! (Sec. 7.4.2) are right: the gradient matches central finite differences of the closed-form
//! return, and the return matches Monte Carlo rollouts of the environment.

mod common;

use mbrl_core::env::vector;
use mbrl_core::Env;
use mbrl_envs::double_integrator::{
    expected_return, expected_return_gradient, DoubleIntegrator, LinearPolicy, A, B, HORIZON, R,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const NAME: &str = "double-integrator";

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
fn step_is_linear_with_quadratic_cost() {
    let mut env = DoubleIntegrator::new().unwrap();
    env.reset(Some(5)).unwrap();
    let x = env.state();
    let u = 0.7;
    let step = env.step(&vector(&[u as f32]).unwrap()).unwrap();
    let u = u as f32 as f64;
    let expected = [
        A[0][0] * x[0] + A[0][1] * x[1] + B[0] * u,
        A[1][0] * x[0] + A[1][1] * x[1] + B[1] * u,
    ];
    assert_eq!(env.state(), expected);
    assert!((step.reward + (x[0] * x[0] + x[1] * x[1] + R * u * u)).abs() < 1e-12);
}

fn policies() -> Vec<LinearPolicy> {
    vec![
        LinearPolicy {
            gain: [0.0, 0.0],
            noise_std: 0.0,
        },
        LinearPolicy {
            gain: [-1.0, -1.5],
            noise_std: 0.0,
        },
        LinearPolicy {
            gain: [-0.3, -2.0],
            noise_std: 0.5,
        },
        LinearPolicy {
            gain: [0.4, 0.2],
            noise_std: 1.0,
        },
    ]
}

#[test]
fn exact_gradient_matches_central_finite_differences_of_the_exact_return() {
    let h = 1e-6;
    for policy in policies() {
        for (horizon, discount) in [(HORIZON, 1.0), (HORIZON, 0.95), (7, 0.9), (1, 1.0)] {
            let grad = expected_return_gradient(&policy, horizon, discount);
            for (j, &exact) in grad.iter().enumerate() {
                let (mut plus, mut minus) = (policy, policy);
                plus.gain[j] += h;
                minus.gain[j] -= h;
                let fd = (expected_return(&plus, horizon, discount)
                    - expected_return(&minus, horizon, discount))
                    / (2.0 * h);
                let err = (exact - fd).abs() / (1.0 + fd.abs());
                assert!(
                    err < 1e-6,
                    "{policy:?} H={horizon} gamma={discount} dJ/dK{j}: exact {exact} vs fd {fd}"
                );
            }
        }
    }
}

#[test]
fn zero_horizon_has_zero_return_and_gradient() {
    let policy = LinearPolicy {
        gain: [-1.0, -1.0],
        noise_std: 0.3,
    };
    assert_eq!(expected_return(&policy, 0, 1.0), 0.0);
    assert_eq!(expected_return_gradient(&policy, 0, 1.0), [0.0, 0.0]);
}

/// A standard normal draw (Box-Muller).
fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = 1.0 - rng.random::<f64>();
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

#[test]
fn exact_return_matches_monte_carlo_rollouts_of_the_env() {
    let policy = LinearPolicy {
        gain: [-1.0, -1.5],
        noise_std: 0.5,
    };
    let mut env = DoubleIntegrator::new().unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let episodes = 2000;
    let returns: Vec<f64> = (0..episodes)
        .map(|i| {
            env.reset(Some(i)).unwrap();
            (0..HORIZON)
                .map(|_| {
                    let x = env.state();
                    let u = policy.gain[0] * x[0]
                        + policy.gain[1] * x[1]
                        + policy.noise_std * normal(&mut rng);
                    env.step(&vector(&[u as f32]).unwrap()).unwrap().reward
                })
                .sum()
        })
        .collect();
    let mean = returns.iter().sum::<f64>() / episodes as f64;
    let var = returns.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / (episodes - 1) as f64;
    let stderr = (var / episodes as f64).sqrt();
    let exact = expected_return(&policy, HORIZON, 1.0);
    assert!(
        (mean - exact).abs() < 4.0 * stderr,
        "Monte Carlo {mean} +- {stderr} vs exact {exact}"
    );
}
