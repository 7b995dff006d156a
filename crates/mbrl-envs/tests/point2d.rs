//! `point2d` passes `check_env` and its dynamics and reward match Appendix B.3.

use mbrl_core::check_env::{check_env, CheckEnvOptions};
use mbrl_core::env::vector;
use mbrl_envs::point2d::HORIZON;
use mbrl_envs::{make_factory, EnvConfig};

fn config() -> EnvConfig {
    EnvConfig {
        name: "point2d".into(),
        ..EnvConfig::default()
    }
}

#[test]
fn passes_check_env() {
    let report = check_env(
        &make_factory(&config()).unwrap(),
        &CheckEnvOptions::default(),
    )
    .unwrap();
    // point2d never terminates, so every episode runs to the 30-step time limit: 16 whole
    // episodes in 500 steps, then a 17th started.
    assert_eq!(report.steps, 500);
    assert_eq!(report.episodes, 1 + 500 / HORIZON);
}

#[test]
fn actions_are_clipped_and_reward_uses_the_state_before_the_step() {
    let mut env = make_factory(&config()).unwrap()().unwrap();
    let (obs, _) = env.reset(Some(3)).unwrap();
    let s = obs.to_vec1::<f32>().unwrap();
    let step = env.step(&vector(&[1.0, -1.0]).unwrap()).unwrap();
    let next = step.obs.to_vec1::<f32>().unwrap();
    assert!((next[0] - (s[0] + 0.1)).abs() < 1e-6 && (next[1] - (s[1] - 0.1)).abs() < 1e-6);
    let expected = -((s[0] * s[0] + s[1] * s[1]) as f64);
    assert!((step.reward - expected).abs() < 1e-6);
}
