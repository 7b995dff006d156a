//! `ModelEnv` sampling modes (thesis Appendix A.4.1) on a known ensemble, rewards and
//! terminations from the task functions, clipping, gradients and seeding.
//!
//! `ScaledDriftEnsemble` member `k` predicts `s' = s + (1 + 0.1 k) a`; the `Drift` task's reward
//! is `-(s' - 1)^2` and it terminates when `|s'| > 5`.

use std::sync::Arc;

use candle_core::{DType, Device, Tensor, Var};
use mbrl_core::env::Env;
use mbrl_core::task::TaskFunctions;
use mbrl_core::testing::{Drift, ScaledDriftEnsemble};
use mbrl_models::{ModelEnv, ModelEnvConfig, SamplingMode};

mod common;
use common::{rng, values};

fn task() -> Arc<dyn TaskFunctions> {
    Drift::new().task_functions()
}

fn env(members: usize, sampling: SamplingMode) -> ModelEnv<ScaledDriftEnsemble> {
    let config = ModelEnvConfig {
        sampling,
        ..Default::default()
    };
    ModelEnv::new(ScaledDriftEnsemble::new(members, None), task(), config).unwrap()
}

/// `b` rows of state `s` and action `a`.
fn rows(b: usize, s: f32, a: f32) -> (Tensor, Tensor) {
    (
        Tensor::full(s, (b, 1), &Device::Cpu).unwrap(),
        Tensor::full(a, (b, 1), &Device::Cpu).unwrap(),
    )
}

fn next(env: &ModelEnv<ScaledDriftEnsemble>, b: usize, seed: u64) -> Vec<f32> {
    let (obs, act) = rows(b, 0.0, 1.0);
    values(&env.step(&obs, &act, &mut rng(seed)).unwrap().next_obs)
}

/// Which member produced `x` for `s = 0`, `a = 1`.
fn member_of(x: f32) -> usize {
    ((x - 1.0) / 0.1).round() as usize
}

#[test]
fn model_mean_is_the_mean_of_the_members() {
    assert!(next(&env(3, SamplingMode::ModelMean), 4, 0)
        .iter()
        .all(|&x| (x - 1.1).abs() < 1e-6));
}

#[test]
fn model_med_is_the_median_of_the_members() {
    assert!(next(&env(3, SamplingMode::ModelMed), 4, 0)
        .iter()
        .all(|&x| (x - 1.1).abs() < 1e-6));
    // Even ensemble: the mean of the two middle predictions 1.1 and 1.2.
    assert!(next(&env(4, SamplingMode::ModelMed), 4, 0)
        .iter()
        .all(|&x| (x - 1.15).abs() < 1e-6));
}

#[test]
fn one_model_uses_member_zero() {
    assert!(next(&env(5, SamplingMode::OneModel), 8, 0)
        .iter()
        .all(|&x| (x - 1.0).abs() < 1e-6));
}

#[test]
fn step_rand_picks_members_uniformly_per_row_and_step() {
    let e = env(5, SamplingMode::StepRand);
    let draws = next(&e, 10000, 1);
    let mut counts = [0usize; 5];
    for &x in &draws {
        assert!((x - (1.0 + 0.1 * member_of(x) as f32)).abs() < 1e-6);
        counts[member_of(x)] += 1;
    }
    for c in counts {
        assert!((c as f32 / 10000.0 - 0.2).abs() < 0.02, "{counts:?}");
    }
    // A new step draws anew: the same row changes member.
    let again = next(&e, 10000, 2);
    let same = draws.iter().zip(&again).filter(|(a, b)| a == b).count();
    assert!((same as f32 / 10000.0 - 0.2).abs() < 0.03, "{same}");
}

#[test]
fn model_mean_std_samples_a_normal_fitted_to_the_members() {
    // Two members: 1.0 and 1.1, so mean 1.05 and population std 0.05.
    let draws = next(&env(2, SamplingMode::ModelMeanStd), 20000, 3);
    let n = draws.len() as f32;
    let mean = draws.iter().sum::<f32>() / n;
    let std = (draws.iter().map(|x| (x - mean).powi(2)).sum::<f32>() / n).sqrt();
    assert!(
        (mean - 1.05).abs() < 2e-3 && (std - 0.05).abs() < 2e-3,
        "{mean} {std}"
    );
}

#[test]
fn eps_rand_keeps_one_member_per_episode() {
    let e = env(3, SamplingMode::EpsRand);
    let (obs, act) = rows(3000, 0.0, 1.0);
    assert!(
        e.step(&obs, &act, &mut rng(0)).is_err(),
        "eps_rand needs episode members"
    );
    let mut r = rng(4);
    let members = e.draw_episode_members(3000, &mut r);
    for _ in 0..3 {
        let got = values(
            &e.step_episodes(&obs, &act, &members, &mut r)
                .unwrap()
                .next_obs,
        );
        let used: Vec<usize> = got.iter().map(|&x| member_of(x)).collect();
        assert_eq!(used, members);
    }
    let share = members.iter().filter(|&&m| m == 2).count() as f32 / 3000.0;
    assert!((share - 1.0 / 3.0).abs() < 0.03, "{share}");
}

#[test]
fn step_members_uses_the_given_member_per_row() {
    let e = env(4, SamplingMode::StepRand);
    let (obs, act) = rows(5, 0.0, 1.0);
    let got = values(
        &e.step_members(&obs, &act, &[3, 0, 0, 2, 1], &mut rng(0))
            .unwrap()
            .next_obs,
    );
    let used: Vec<usize> = got.iter().map(|&x| member_of(x)).collect();
    assert_eq!(used, vec![3, 0, 0, 2, 1]);
    assert!(e
        .step_members(&obs, &act, &[4, 0, 0, 0, 0], &mut rng(0))
        .is_err());
    assert!(e.step_members(&obs, &act, &[0], &mut rng(0)).is_err());
}

#[test]
fn rewards_and_terminations_are_the_task_functions_of_the_transition() {
    let e = env(3, SamplingMode::StepRand);
    let obs = Tensor::new(&[[0.0f32], [4.5], [-4.8]], &Device::Cpu).unwrap();
    let act = Tensor::new(&[[1.0f32], [1.0], [-0.1]], &Device::Cpu).unwrap();
    let step = e.step(&obs, &act, &mut rng(5)).unwrap();
    let t = task();
    assert_eq!(
        values(&step.reward),
        values(&t.reward(&obs, &act, &step.next_obs).unwrap())
    );
    assert_eq!(values(&step.terminated), vec![0.0, 1.0, 0.0]);
}

#[test]
fn clipping_bounds_next_observations_and_rewards() {
    let config = ModelEnvConfig {
        sampling: SamplingMode::ModelMean,
        obs_clip: Some(3.0),
        reward_clip: Some(1.0),
        ..Default::default()
    };
    let e = ModelEnv::new(ScaledDriftEnsemble::new(2, None), task(), config).unwrap();
    let (obs, act) = rows(2, 4.0, 1.0);
    let step = e.step(&obs, &act, &mut rng(0)).unwrap();
    assert_eq!(values(&step.next_obs), vec![3.0, 3.0]);
    assert_eq!(values(&step.reward), vec![-1.0, -1.0]);
    let bad = ModelEnvConfig {
        obs_clip: Some(0.0),
        ..Default::default()
    };
    assert!(ModelEnv::new(ScaledDriftEnsemble::new(2, None), task(), bad).is_err());
}

#[test]
fn probabilistic_members_are_sampled_unless_noise_is_off() {
    let model = || ScaledDriftEnsemble::new(1, Some(0.01f32.ln()));
    let noisy = ModelEnv::new(model(), task(), ModelEnvConfig::default()).unwrap();
    let (obs, act) = rows(5000, 0.0, 1.0);
    let x = values(&noisy.step(&obs, &act, &mut rng(6)).unwrap().next_obs);
    let var = x.iter().map(|v| (v - 1.0).powi(2)).sum::<f32>() / x.len() as f32;
    assert!((var - 0.01).abs() < 1e-3, "{var}");
    let quiet = ModelEnvConfig {
        sample_noise: false,
        ..Default::default()
    };
    let quiet = ModelEnv::new(model(), task(), quiet).unwrap();
    let x = values(&quiet.step(&obs, &act, &mut rng(6)).unwrap().next_obs);
    assert!(x.iter().all(|&v| v == 1.0));
}

#[test]
fn steps_are_differentiable_in_the_actions() {
    // d s'/d a is the scale of the member that predicted the row.
    for mode in [
        SamplingMode::StepRand,
        SamplingMode::ModelMean,
        SamplingMode::ModelMed,
        SamplingMode::OneModel,
    ] {
        let e = env(3, mode);
        let obs = Tensor::zeros((6, 1), DType::F32, &Device::Cpu).unwrap();
        let act = Var::ones((6, 1), DType::F32, &Device::Cpu).unwrap();
        let step = e.step(&obs, act.as_tensor(), &mut rng(7)).unwrap();
        let grads = step.next_obs.sum_all().unwrap().backward().unwrap();
        let g = values(grads.get(act.as_tensor()).unwrap());
        for (gi, x) in g.iter().zip(values(&step.next_obs)) {
            assert!((gi - x).abs() < 1e-5, "{mode:?}: grad {gi} for next {x}");
        }
    }
}

#[test]
fn same_seed_same_rollout() {
    for mode in [SamplingMode::StepRand, SamplingMode::ModelMeanStd] {
        let e = env(5, mode);
        assert_eq!(next(&e, 50, 9), next(&e, 50, 9));
        assert_ne!(next(&e, 50, 9), next(&e, 50, 10));
    }
}
