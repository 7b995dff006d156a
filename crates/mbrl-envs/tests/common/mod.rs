//! Checks every environment's integration tests share: `check_env`, determinism under a seed
//! and long random runs without NaN.

use mbrl_core::check_env::{check_env, CheckEnvOptions, CheckReport};
use mbrl_core::env::{vector, EnvFactory};
use mbrl_core::seeding::{stream_rng, Stream};
use mbrl_envs::{make_factory, EnvConfig};

/// The registry factory of `name` with `task_family` active and the default horizon.
pub fn factory(name: &str, task_family: Option<&str>) -> EnvFactory {
    make_factory(&EnvConfig {
        name: name.into(),
        max_episode_steps: None,
        task_family: task_family.map(str::to_string),
        ..EnvConfig::default()
    })
    .unwrap()
}

/// Runs `check_env` with its default options (500 random steps, reward tolerance 1e-4).
pub fn passes_check_env(name: &str, task_family: Option<&str>) -> CheckReport {
    let report = check_env(&factory(name, task_family), &CheckEnvOptions::default())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(report.steps, 500);
    report
}

/// Two copies under the same seed and actions produce identical episodes; another seed gives
/// another initial observation.
pub fn deterministic_under_a_seed(name: &str) {
    let f = factory(name, None);
    let (mut a, mut b) = (f().unwrap(), f().unwrap());
    let first = a.reset(Some(42)).unwrap().0.to_vec1::<f32>().unwrap();
    assert_eq!(
        first,
        b.reset(Some(42)).unwrap().0.to_vec1::<f32>().unwrap()
    );
    let mut rng = stream_rng(42, Stream::Policy);
    for _ in 0..300 {
        let action = vector(&a.action_space().sample(&mut rng)).unwrap();
        let (sa, sb) = (a.step(&action).unwrap(), b.step(&action).unwrap());
        assert_eq!(
            sa.obs.to_vec1::<f32>().unwrap(),
            sb.obs.to_vec1::<f32>().unwrap()
        );
        assert_eq!(sa.reward.to_bits(), sb.reward.to_bits());
        assert_eq!((sa.terminated, sa.truncated), (sb.terminated, sb.truncated));
        if sa.terminated || sa.truncated {
            a.reset(None).unwrap();
            b.reset(None).unwrap();
        }
    }
    let other = a.reset(Some(43)).unwrap().0.to_vec1::<f32>().unwrap();
    assert_ne!(
        first, other,
        "seeds 42 and 43 gave the same initial observation"
    );
}

/// `steps` uniformly random actions (resetting at episode ends) never give a NaN or infinite
/// observation or reward.
pub fn random_steps_stay_finite(name: &str, steps: usize) {
    let mut env = factory(name, None)().unwrap();
    env.reset(Some(7)).unwrap();
    let mut rng = stream_rng(7, Stream::Policy);
    for t in 0..steps {
        let action = vector(&env.action_space().sample(&mut rng)).unwrap();
        let step = env.step(&action).unwrap();
        let obs = step.obs.to_vec1::<f32>().unwrap();
        assert!(
            obs.iter().all(|v| v.is_finite()) && step.reward.is_finite(),
            "step {t}: obs {obs:?}, reward {}",
            step.reward
        );
        if step.terminated || step.truncated {
            env.reset(None).unwrap();
        }
    }
}
