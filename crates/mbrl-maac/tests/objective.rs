//! The math of MAAC's actor objective and of the temperature (thesis Sec. 7.3):
//! - the pathwise gradient of the H-step objective equals central differences of the objective
//!   (same random numbers in every evaluation) on a known model: the drift model of
//!   `mbrl_core::testing` (`s' = s + (1 + 0.1 k) a`, member `k`, with predictive noise) and the
//!   drift task's reward `-(s' - 1)^2`;
//! - with `H = 0` and one terminal action sample it is SAC's actor loss: same value, same
//!   gradient;
//! - the learned temperature moves towards the target entropy.

use std::sync::Arc;

use candle_core::{Device, Tensor};
use mbrl_core::env::Env;
use mbrl_core::model::DynamicsModel;
use mbrl_core::model_env::{ModelEnv, ModelEnvConfig};
use mbrl_core::space::BoxSpace;
use mbrl_core::testing::{Drift, ScaledDriftEnsemble};
use mbrl_maac::actor::ActorConfig;
use mbrl_maac::agent::{SacConfig, SoftActorCritic};
use mbrl_maac::objective::{maac_actor_loss, sac_actor_loss, LookAhead};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn agent(seed: u64) -> SoftActorCritic {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let actor = ActorConfig {
        hidden_sizes: vec![16],
        ..Default::default()
    };
    let sac = SacConfig {
        critic_hidden_sizes: vec![16],
        initial_alpha: 0.3,
        ..Default::default()
    };
    let space = BoxSpace::uniform(-1.0, 1.0, 1).unwrap();
    SoftActorCritic::new(1, &space, actor, sac, &mut rng).unwrap()
}

fn model_env() -> ModelEnv<Arc<dyn DynamicsModel + Sync>> {
    let model: Arc<dyn DynamicsModel + Sync> = Arc::new(ScaledDriftEnsemble::new(3, Some(-3.0)));
    ModelEnv::new(
        model,
        Drift::new().task_functions(),
        ModelEnvConfig::default(),
    )
    .unwrap()
}

fn starts() -> Tensor {
    Tensor::new(
        &[[-0.8f32], [-0.3], [0.1], [0.6], [1.4], [2.0]],
        &Device::Cpu,
    )
    .unwrap()
}

/// The objective's value with the actor's parameters moved by `step * direction`, drawing the
/// same random numbers (seed `noise`) as every other evaluation.
fn loss_at(
    agent: &SoftActorCritic,
    base: &[Tensor],
    direction: &[Tensor],
    step: f64,
    look_ahead: LookAhead,
    noise: u64,
) -> f64 {
    let moved: Vec<Tensor> = base
        .iter()
        .zip(direction)
        .map(|(b, d)| (b + (d * step).unwrap()).unwrap())
        .collect();
    agent.actor.net().set(&moved).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(noise);
    let loss = maac_actor_loss(agent, &model_env(), &starts(), look_ahead, &mut rng)
        .unwrap()
        .loss;
    agent.actor.net().set(base).unwrap();
    loss.to_scalar::<f32>().unwrap() as f64
}

#[test]
fn the_pathwise_gradient_equals_central_differences() {
    for horizon in [1, 3] {
        let agent = agent(7);
        let look_ahead = LookAhead {
            horizon,
            action_samples: 4,
            gamma: 0.9,
        };
        let base = agent.actor.net().copies().unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let loss = maac_actor_loss(&agent, &model_env(), &starts(), look_ahead, &mut rng)
            .unwrap()
            .loss;
        let grads = loss.backward().unwrap();
        for d in 0..3u64 {
            let mut dir_rng = ChaCha8Rng::seed_from_u64(100 + d);
            let direction: Vec<Tensor> = base
                .iter()
                .map(|b| {
                    mbrl_core::policy::standard_normal(b.dims(), &mut dir_rng, &Device::Cpu)
                        .unwrap()
                })
                .collect();
            let analytic: f64 = agent
                .actor
                .vars()
                .iter()
                .zip(&direction)
                .map(|(v, dir)| {
                    let g = grads
                        .get(v.as_tensor())
                        .expect("every actor parameter gets a gradient");
                    (g * dir)
                        .unwrap()
                        .sum_all()
                        .unwrap()
                        .to_scalar::<f32>()
                        .unwrap() as f64
                })
                .sum();
            let eps = 1e-2;
            let numeric = (loss_at(&agent, &base, &direction, eps, look_ahead, 11)
                - loss_at(&agent, &base, &direction, -eps, look_ahead, 11))
                / (2.0 * eps);
            eprintln!("H = {horizon}, direction {d}: pathwise {analytic:.5}, central {numeric:.5}");
            assert!(
                (analytic - numeric).abs() < 2e-2 * (1.0 + numeric.abs()),
                "H = {horizon}, direction {d}: pathwise {analytic}, central differences {numeric}"
            );
        }
    }
}

#[test]
fn with_horizon_zero_and_one_sample_it_is_the_sac_actor_loss() {
    let agent = agent(3);
    let look_ahead = LookAhead {
        horizon: 0,
        action_samples: 1,
        gamma: 0.99,
    };
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let maac = maac_actor_loss(&agent, &model_env(), &starts(), look_ahead, &mut rng).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let sac = sac_actor_loss(&agent, &starts(), &mut rng).unwrap();
    let value = |t: &Tensor| t.to_scalar::<f32>().unwrap();
    assert_eq!(value(&maac.loss), value(&sac.loss), "same value");
    let (g_maac, g_sac) = (maac.loss.backward().unwrap(), sac.loss.backward().unwrap());
    for v in agent.actor.vars() {
        let flat = |g: &candle_core::backprop::GradStore| -> Vec<f32> {
            g.get(v.as_tensor())
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap()
        };
        assert_eq!(flat(&g_maac), flat(&g_sac), "same gradient");
    }
}

/// Starting with a high temperature and an entropy below the target, alpha grows; with an
/// entropy above it, alpha shrinks (the sign of Eq. 18's gradient).
#[test]
fn the_temperature_moves_towards_its_target() {
    for (target, grows) in [(10.0, true), (-10.0, false)] {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let sac = SacConfig {
            critic_hidden_sizes: vec![8],
            target_entropy: Some(target),
            alpha_learning_rate: 1e-2,
            ..Default::default()
        };
        let actor = ActorConfig {
            hidden_sizes: vec![8],
            ..Default::default()
        };
        let space = BoxSpace::uniform(-1.0, 1.0, 1).unwrap();
        let mut agent = SoftActorCritic::new(1, &space, actor, sac, &mut rng).unwrap();
        let before = agent.alpha().unwrap();
        let batch = mbrl_core::data::TransitionBatch {
            obs: starts(),
            act: Tensor::zeros((6, 1), candle_core::DType::F32, &Device::Cpu).unwrap(),
            next_obs: starts(),
            reward: Tensor::zeros(6, candle_core::DType::F32, &Device::Cpu).unwrap(),
            terminated: Tensor::zeros(6, candle_core::DType::F32, &Device::Cpu).unwrap(),
        };
        let targets =
            |_: &SoftActorCritic, part: &mbrl_core::data::TransitionBatch, _: &mut ChaCha8Rng| {
                Ok((part.reward.clone(), Vec::new()))
            };
        let actor_loss =
            |a: &SoftActorCritic, obs: &Tensor, rng: &mut ChaCha8Rng| sac_actor_loss(a, obs, rng);
        for _ in 0..20 {
            agent
                .update(&batch, &targets, &actor_loss, &mut rng)
                .unwrap();
        }
        let after = agent.alpha().unwrap();
        assert_eq!(
            after > before,
            grows,
            "target {target}: alpha {before} -> {after}"
        );
    }
}
