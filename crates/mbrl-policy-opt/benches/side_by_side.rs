//! The Rust side of the candle/PyTorch comparison (`scripts/perf_compare.py`): the workloads
//! of `scripts/perf_torch.py` with the same shapes and the same timing protocol (warm up for
//! `--warmup` seconds, run for `--measure` seconds, print the median per-call time as one JSON
//! line `{"name": ..., "median_ms": ..., "calls": ...}`).
//!
//! - `sgemm_1024`: one `[1024, 1024] x [1024, 1024]` f32 matmul, the GEMM rate that bounds the
//!   other workloads;
//! - `ensemble_train_step`: `MlpEnsemble::train_step`, 5 x (23 -> 512 -> 512 -> 17), batch 256;
//! - `rollout_step`: `ModelEnv::step` in `step_rand` mode on 500 states with a half-cheetah-like
//!   reward;
//! - `policy_fwd_bwd`: Gaussian log-likelihood of the 17 -> 32 -> 32 -> 6 tanh policy on 20000
//!   samples, forward and backward;
//! - `fisher_vector_product`: the policy's exact Fisher-vector product on the same batch.
//!
//! Run: `cargo bench -p mbrl-policy-opt --bench side_by_side -- [--warmup S] [--measure S]
//! [--only NAME]`.

use std::sync::Arc;

use candle_core::{Device, Tensor};
use mbrl_core::data::ReplayBuffer;
use mbrl_core::policy::{standard_normal, GaussianPolicy};
use mbrl_core::task::{never_terminated, TaskFunctions};
use mbrl_core::timing::TimingProtocol;
use mbrl_models::{EnsembleConfig, MlpEnsemble, ModelEnv, ModelEnvConfig};
use mbrl_policy_opt::gaussian_mlp::{GaussianMlpPolicy, PolicyConfig};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// candle allocates a buffer per op; glibc malloc page-faults on large ones (PERFORMANCE_NOTES).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const OBS: usize = 17;
const ACT: usize = 6;

/// Forward velocity (obs 8) minus 0.05 |a|^2, as in the PyTorch script.
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

fn randn(dims: &[usize], rng: &mut ChaCha8Rng) -> Tensor {
    standard_normal(dims, rng, &Device::Cpu).expect("standard normal tensor")
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
    let mut model = MlpEnsemble::new(&config, OBS, ACT, rng).expect("ensemble");
    let mut buffer = ReplayBuffer::new(256, OBS, ACT).expect("buffer");
    let rows = |t: Tensor| -> Vec<Vec<f32>> { t.to_vec2().expect("rows") };
    let o = rows(randn(&[256, OBS], rng));
    let a = rows(randn(&[256, ACT], rng));
    for (o, a) in o.iter().zip(&a) {
        let next: Vec<f32> = o.iter().map(|x| x + 0.1).collect();
        buffer.push(o, a, &next, 0.0, false).expect("push");
    }
    model.fit(&buffer, None, rng).expect("fit");
    model
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let protocol = TimingProtocol::from_args(&args).unwrap_or_else(|e| panic!("{e}"));
    let mut rng = ChaCha8Rng::seed_from_u64(0);

    let a = randn(&[1024, 1024], &mut rng);
    let b = randn(&[1024, 1024], &mut rng);
    protocol.timed("sgemm_1024", || {
        a.matmul(&b).expect("matmul");
    });

    let mut model = ensemble(&mut rng);
    let obs = randn(&[5, 256, OBS], &mut rng);
    let act = randn(&[5, 256, ACT], &mut rng);
    let next = (&obs + 0.1).expect("next");
    protocol.timed("ensemble_train_step", || {
        model.train_step(&obs, &act, &next).expect("train step");
    });

    let env = ModelEnv::new(
        model.freeze().expect("freeze"),
        Arc::new(Cheetah),
        ModelEnvConfig::default(),
    )
    .expect("model env");
    let obs = randn(&[500, OBS], &mut rng);
    let act = randn(&[500, ACT], &mut rng);
    protocol.timed("rollout_step", || {
        env.step(&obs, &act, &mut rng).expect("model step");
    });

    let policy =
        GaussianMlpPolicy::new(OBS, ACT, PolicyConfig::default(), &mut rng).expect("policy");
    let obs = randn(&[20_000, OBS], &mut rng);
    let act = randn(&[20_000, ACT], &mut rng);
    protocol.timed("policy_fwd_bwd", || {
        let loss = policy.log_prob(&obs, &act).and_then(|l| Ok(l.mean_all()?));
        loss.expect("log prob").backward().expect("backward");
    });
    let v = randn(&[policy.num_params()], &mut rng);
    protocol.timed("fisher_vector_product", || {
        policy.fisher_vector_product(&obs, &v).expect("fvp");
    });
}
