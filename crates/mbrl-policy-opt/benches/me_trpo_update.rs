//! The parts of one ME-TRPO policy update at the thesis's half-cheetah settings (Appendix A.1,
//! `configs/me-trpo/half-cheetah.toml`), timed one by one: the policy phase is most of an
//! ME-TRPO iteration (docs/performance.md).
//!
//! - `imagine_500x100`: 500 imagined rollouts of 100 steps in a 5 x (23 -> 512 -> 512 -> 17)
//!   ensemble, `step_rand`, 32-32 tanh policy (28 GFLOP of matmuls);
//! - `validate_5x500x100`: the ensemble validation, the deterministic policy from 500 start
//!   states in each of the 5 members (141 GFLOP; ME-TRPO runs it every 5th update);
//! - `advantages_and_trpo_step`: the linear baseline, advantages and one TRPO step on those
//!   50k samples (Fisher-vector products on every 5th sample).
//!
//! Run: `cargo bench -p mbrl-policy-opt --bench me_trpo_update -- [--measure S] [--only NAME]`.
//! Prints one JSON line per part like `side_by_side`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use candle_core::{Device, Tensor};
use mbrl_core::data::ReplayBuffer;
use mbrl_core::model_env::{ModelEnv, ModelEnvConfig};
use mbrl_core::policy::{standard_normal, GaussianPolicy};
use mbrl_core::task::{never_terminated, TaskFunctions};
use mbrl_models::{EnsembleConfig, MlpEnsemble};
use mbrl_policy_opt::advantages::{process_trajectories, AdvantageConfig};
use mbrl_policy_opt::baseline::LinearFeatureBaseline;
use mbrl_policy_opt::gaussian_mlp::{GaussianMlpPolicy, PolicyConfig};
use mbrl_policy_opt::imagination::{imagine, returns_per_member};
use mbrl_policy_opt::trpo::{trpo_step, TrpoConfig};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// candle allocates a buffer per op; glibc malloc page-faults on large ones (PERFORMANCE_NOTES).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const OBS: usize = 17;
const ACT: usize = 6;
const ROLLOUTS: usize = 500;
const HORIZON: usize = 100;

/// Forward velocity (obs 8) minus 0.1 |a|^2, clipped like ME-TRPO's half-cheetah reward.
struct Cheetah;

impl TaskFunctions for Cheetah {
    fn reward(&self, _obs: &Tensor, act: &Tensor, next_obs: &Tensor) -> mbrl_core::Result<Tensor> {
        let velocity = next_obs.narrow(1, 8, 1)?.squeeze(1)?;
        Ok((velocity - (act.sqr()?.sum(1)? * 0.1)?)?)
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

/// A 5 x 512-512 ensemble with normalisation fitted to small random transitions, so that
/// imagined states stay bounded.
fn ensemble(rng: &mut ChaCha8Rng) -> MlpEnsemble {
    let config = EnsembleConfig {
        hidden_sizes: vec![512, 512],
        max_epochs: 1,
        early_stopping: mbrl_models::EarlyStoppingRule::Never,
        validation_fraction: 0.0,
        ..Default::default()
    };
    let mut model = MlpEnsemble::new(&config, OBS, ACT, rng).expect("ensemble");
    let mut buffer = ReplayBuffer::new(1000, OBS, ACT).expect("buffer");
    let o: Vec<Vec<f32>> = randn(&[1000, OBS], rng).to_vec2().expect("rows");
    let a: Vec<Vec<f32>> = randn(&[1000, ACT], rng).to_vec2().expect("rows");
    for (o, a) in o.iter().zip(&a) {
        let next: Vec<f32> = o.iter().map(|x| 0.9 * x).collect();
        buffer.push(o, a, &next, 0.0, false).expect("push");
    }
    model.fit(&buffer, None, rng).expect("fit");
    model
}

/// Median wall time of `f` over `--measure` seconds (at least 3 calls), as a JSON line.
fn timed(name: &str, args: &Args, mut f: impl FnMut()) {
    if args.only.as_deref().is_some_and(|only| only != name) {
        return;
    }
    f();
    let mut times = Vec::new();
    let end = Instant::now() + args.measure;
    while Instant::now() < end || times.len() < 3 {
        let start = Instant::now();
        f();
        times.push(start.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    println!(
        "{{\"name\": \"{name}\", \"median_ms\": {}, \"calls\": {}}}",
        1e3 * times[times.len() / 2],
        times.len()
    );
}

struct Args {
    measure: Duration,
    only: Option<String>,
}

fn main() {
    let argv: Vec<String> = std::env::args().collect();
    let value = |flag: &str| {
        argv.iter()
            .position(|a| a == flag)
            .and_then(|i| argv.get(i + 1).cloned())
    };
    let args = Args {
        measure: Duration::from_secs_f64(
            value("--measure").map_or(10.0, |v| v.parse().expect("--measure takes seconds")),
        ),
        only: value("--only"),
    };
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let model = ensemble(&mut rng).freeze().expect("freeze");
    let config = ModelEnvConfig {
        reward_clip: Some(10.0),
        ..Default::default()
    };
    let env = ModelEnv::new(model, Arc::new(Cheetah), config).expect("model env");
    let policy =
        GaussianMlpPolicy::new(OBS, ACT, PolicyConfig::default(), &mut rng).expect("policy");
    let starts = randn(&[ROLLOUTS, OBS], &mut rng);

    timed("imagine_500x100", &args, || {
        imagine(&env, &policy, &starts, HORIZON, false, &mut rng).expect("imagine");
    });
    timed("validate_5x500x100", &args, || {
        returns_per_member(&env, &policy, &starts, HORIZON, &mut rng).expect("validate");
    });
    let trajectories = imagine(&env, &policy, &starts, HORIZON, false, &mut rng).expect("imagine");
    let start = policy.flat_params().expect("params").copy().expect("copy");
    let trpo = TrpoConfig {
        fvp_subsample: 0.2,
        ..TrpoConfig::default()
    };
    let mut baseline = LinearFeatureBaseline::new();
    timed("advantages_and_trpo_step", &args, || {
        policy.set_flat_params(&start).expect("reset");
        let batch = process_trajectories(&trajectories, &mut baseline, &AdvantageConfig::default())
            .expect("advantages");
        trpo_step(&policy, &batch, &trpo).expect("trpo step");
    });
}
