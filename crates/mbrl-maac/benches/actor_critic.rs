//! The inner loops of SAC, MBPO and MAAC, timed like `mbrl-policy-opt`'s `side_by_side` bench
//! (one JSON line per workload with the median per-call time; `scripts/perf_compare.py` runs it
//! against `scripts/perf_torch.py`'s same shapes):
//! - `sac_update`: one soft actor-critic update on a batch of 256 (obs 17, act 6): one-step
//!   targets, twin 256-256 critics, 256-256 actor, temperature, Polyak step;
//! - `maac_actor_update`: MAAC's actor step (`SoftActorCritic::actor_step`: the loss, its
//!   gradient and the Adam step) with `H = 3` through an 8-member 4 x 200 probabilistic
//!   ensemble (swish), 5 terminal action samples, batch 256.
//!
//! Run: `cargo bench -p mbrl-maac --bench actor_critic -- [--warmup S] [--measure S] [--only NAME]`.

use std::sync::Arc;

use candle_core::{Device, Tensor};
use mbrl_core::data::{ReplayBuffer, TransitionBatch};
use mbrl_core::model::DynamicsModel;
use mbrl_core::model_env::{ModelEnv, ModelEnvConfig};
use mbrl_core::policy::standard_normal;
use mbrl_core::space::BoxSpace;
use mbrl_core::task::{never_terminated, TaskFunctions};
use mbrl_core::timing::TimingProtocol;
use mbrl_maac::actor::ActorConfig;
use mbrl_maac::agent::{SacConfig, SoftActorCritic};
use mbrl_maac::objective::{maac_actor_loss, sac_actor_loss, LookAhead};
use mbrl_maac::targets::one_step_targets;
use mbrl_models::{Activation, EnsembleConfig, Head, MlpEnsemble};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const OBS: usize = 17;
const ACT: usize = 6;
const BATCH: usize = 256;

/// Forward velocity (obs 8) minus 0.1 |a|^2, as in the PyTorch script.
struct Cheetah;

impl TaskFunctions for Cheetah {
    fn reward(&self, _obs: &Tensor, act: &Tensor, next_obs: &Tensor) -> mbrl_core::Result<Tensor> {
        let velocity = next_obs.narrow(1, 8, 1)?.squeeze(1)?;
        Ok((velocity - (act.sqr()?.sum(1)? * 0.1)?)?)
    }

    fn terminated(&self, _: &Tensor, _: &Tensor, next_obs: &Tensor) -> mbrl_core::Result<Tensor> {
        never_terminated(next_obs)
    }
}

fn randn(dims: &[usize], rng: &mut ChaCha8Rng) -> Tensor {
    standard_normal(dims, rng, &Device::Cpu).expect("standard normal tensor")
}

fn agent(rng: &mut ChaCha8Rng) -> SoftActorCritic {
    let space = BoxSpace::uniform(-1.0, 1.0, ACT).expect("box");
    SoftActorCritic::new(
        OBS,
        &space,
        ActorConfig::default(),
        SacConfig::default(),
        rng,
    )
    .expect("agent")
}

/// MAAC's model: 8 probabilistic members of 4 x 200 swish, normalisation fitted on random data.
fn ensemble(rng: &mut ChaCha8Rng) -> Arc<dyn DynamicsModel + Sync> {
    let config = EnsembleConfig {
        members: 8,
        hidden_sizes: vec![200; 4],
        activation: Activation::Swish,
        head: Head::Probabilistic,
        max_epochs: 1,
        early_stopping: mbrl_models::EarlyStoppingRule::Never,
        validation_fraction: 0.0,
        ..Default::default()
    };
    let mut model = MlpEnsemble::new(&config, OBS, ACT, rng).expect("ensemble");
    let mut buffer = ReplayBuffer::new(512, OBS, ACT).expect("buffer");
    let o: Vec<Vec<f32>> = randn(&[512, OBS], rng).to_vec2().expect("rows");
    let a: Vec<Vec<f32>> = randn(&[512, ACT], rng).to_vec2().expect("rows");
    for (o, a) in o.iter().zip(&a) {
        let next: Vec<f32> = o.iter().map(|x| 0.9 * x).collect();
        buffer.push(o, a, &next, 0.0, false).expect("push");
    }
    model.fit(&buffer, None, rng).expect("fit");
    Arc::new(model.freeze().expect("freeze"))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let protocol = TimingProtocol::from_args(&args).unwrap_or_else(|e| panic!("{e}"));
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let mut sac = agent(&mut rng);
    let batch = TransitionBatch {
        obs: randn(&[BATCH, OBS], &mut rng),
        act: randn(&[BATCH, ACT], &mut rng)
            .clamp(-1.0, 1.0)
            .expect("clamp"),
        next_obs: randn(&[BATCH, OBS], &mut rng),
        reward: randn(&[BATCH], &mut rng),
        terminated: Tensor::zeros(BATCH, candle_core::DType::F32, &Device::Cpu).expect("zeros"),
    };
    let targets = |a: &SoftActorCritic, part: &TransitionBatch, rng: &mut ChaCha8Rng| {
        Ok((one_step_targets(a, part, rng)?, Vec::new()))
    };
    let actor_loss =
        |a: &SoftActorCritic, obs: &Tensor, rng: &mut ChaCha8Rng| sac_actor_loss(a, obs, rng);
    protocol.timed("sac_update", || {
        sac.update(&batch, &targets, &actor_loss, &mut rng)
            .expect("update");
    });

    let model_env = ModelEnv::new(
        ensemble(&mut rng),
        Arc::new(Cheetah),
        ModelEnvConfig::default(),
    )
    .expect("model env");
    let look_ahead = LookAhead {
        horizon: 3,
        action_samples: 5,
        gamma: 0.99,
    };
    let mut maac = agent(&mut rng);
    let maac_loss = |a: &SoftActorCritic, obs: &Tensor, rng: &mut ChaCha8Rng| {
        maac_actor_loss(a, &model_env, obs, look_ahead, rng)
    };
    protocol.timed("maac_actor_update", || {
        maac.actor_step(&batch.obs, &maac_loss, &mut rng)
            .expect("maac actor step");
    });
}
