//! Benchmarks of the two hot paths of model-based training (shapes of PERFORMANCE_NOTES):
//! one ensemble training step (5 x 512-512, obs 17 / act 6, batch 256, Adam) and one
//! imagined-rollout step (5 models, 500 states) in `ModelEnv` with `step_rand`, plus the full
//! all-members-on-all-states forward it avoids.
//!
//! Run: `cargo bench -p mbrl-models --bench ensemble`.

use std::sync::Arc;

use candle_core::{Device, Tensor};
use criterion::{criterion_main, Criterion};
use mbrl_core::data::ReplayBuffer;
use mbrl_core::model::DynamicsModel;
use mbrl_core::task::{never_terminated, TaskFunctions};
use mbrl_models::{EnsembleConfig, MlpEnsemble, ModelEnv, ModelEnvConfig};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// candle allocates a buffer per op; glibc malloc page-faults on large ones (PERFORMANCE_NOTES).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const OBS: usize = 17;
const ACT: usize = 6;

/// A half-cheetah-like reward: forward velocity (obs 8) minus 0.05 |a|^2.
struct Cheetah;

impl TaskFunctions for Cheetah {
    fn reward(&self, _obs: &Tensor, act: &Tensor, next_obs: &Tensor) -> mbrl_core::Result<Tensor> {
        let velocity = next_obs.narrow(1, 8, 1)?.squeeze(1)?;
        Ok((velocity - (act.sqr()?.sum(1)? * 0.05)?)?)
    }

    fn terminated(
        &self,
        _obs: &Tensor,
        _act: &Tensor,
        next_obs: &Tensor,
    ) -> mbrl_core::Result<Tensor> {
        never_terminated(next_obs)
    }
}

fn randn(dims: (usize, usize), rng: &mut ChaCha8Rng) -> Tensor {
    mbrl_core::policy::standard_normal(&[dims.0, dims.1], rng, &Device::Cpu).unwrap()
}

/// An ensemble whose normalisation was fitted to random data (one short fit).
fn ensemble(rng: &mut ChaCha8Rng) -> MlpEnsemble {
    let config = EnsembleConfig {
        batch_size: 256,
        max_epochs: 1,
        early_stopping: mbrl_models::EarlyStoppingRule::Never,
        validation_fraction: 0.0,
        ..Default::default()
    };
    let mut model = MlpEnsemble::new(&config, OBS, ACT, rng).unwrap();
    let mut buffer = ReplayBuffer::new(256, OBS, ACT).unwrap();
    let rows = |t: Tensor| -> Vec<Vec<f32>> { t.to_vec2().unwrap() };
    let o = rows(randn((256, OBS), rng));
    let a = rows(randn((256, ACT), rng));
    let d = rows(randn((256, OBS), rng));
    for i in 0..256 {
        let next: Vec<f32> = o[i].iter().zip(&d[i]).map(|(x, y)| x + 0.1 * y).collect();
        buffer.push(&o[i], &a[i], &next, 0.0, false).unwrap();
    }
    model.fit(&buffer, None, rng).unwrap();
    model
}

fn train_step(c: &mut Criterion) {
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let mut model = ensemble(&mut rng);
    let k = model.config().members;
    let obs = randn((k * 256, OBS), &mut rng)
        .reshape((k, 256, OBS))
        .unwrap();
    let act = randn((k * 256, ACT), &mut rng)
        .reshape((k, 256, ACT))
        .unwrap();
    let next = (&obs + 0.1).unwrap();
    c.bench_function("ensemble_train_step_5x512x512_b256", |b| {
        b.iter(|| model.train_step(&obs, &act, &next).unwrap())
    });
}

fn rollout_step(c: &mut Criterion) {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let model = ensemble(&mut rng).freeze().unwrap();
    let obs = randn((500, OBS), &mut rng);
    let act = randn((500, ACT), &mut rng);
    c.bench_function("predict_members_5_models_x_500_states", |b| {
        b.iter(|| model.predict_members(&obs, &act).unwrap())
    });
    let env = ModelEnv::new(model, Arc::new(Cheetah), ModelEnvConfig::default()).unwrap();
    c.bench_function("model_env_step_rand_500_states", |b| {
        b.iter(|| env.step(&obs, &act, &mut rng).unwrap())
    });
}

/// criterion's macros generate the undocumented `benches` function.
mod group {
    use super::{rollout_step, train_step};
    criterion::criterion_group!(benches, train_step, rollout_step);
}
criterion_main!(group::benches);
