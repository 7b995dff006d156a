//! Benchmarks of the policy-optimisation hot paths (shapes of issue 5 / PERFORMANCE_NOTES):
//! one policy forward + backward of the Gaussian log-likelihood (17 -> 32 -> 32 -> 6 tanh,
//! batch 20000), one exact Fisher-vector product on the same batch, and one TRPO update
//! (32-32 policy, 50k samples, Fisher products on every 5th sample).
//!
//! Run: `cargo bench -p mbrl-policy-opt --bench policy`.

use candle_core::{Device, Tensor};
use criterion::{criterion_main, Criterion};
use mbrl_core::policy::{standard_normal, GaussianPolicy, Policy};
use mbrl_core::seeding::{stream_rng, Stream};
use mbrl_policy_opt::advantages::PolicyBatch;
use mbrl_policy_opt::gaussian_mlp::{GaussianMlpPolicy, PolicyConfig};
use mbrl_policy_opt::trpo::{trpo_step, TrpoConfig};

/// candle allocates a buffer per op; glibc malloc page-faults on large ones (PERFORMANCE_NOTES).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const OBS: usize = 17;
const ACT: usize = 6;

fn batch(policy: &GaussianMlpPolicy, n: usize) -> PolicyBatch {
    let mut rng = stream_rng(1, Stream::Data);
    let obs = standard_normal(&[n, OBS], &mut rng, &Device::Cpu).unwrap();
    let act = policy.act(&obs, false, &mut rng).unwrap();
    let advantages = act.narrow(1, 0, 1).unwrap().squeeze(1).unwrap();
    PolicyBatch {
        obs,
        act,
        advantages,
        mean_return: 0.0,
    }
}

fn policy() -> GaussianMlpPolicy {
    let mut rng = stream_rng(0, Stream::Policy);
    GaussianMlpPolicy::new(OBS, ACT, PolicyConfig::default(), &mut rng).unwrap()
}

fn forward_backward(c: &mut Criterion) {
    let p = policy();
    let b = batch(&p, 20_000);
    c.bench_function("policy_logprob_fwd_bwd_32x32_batch_20000", |bench| {
        bench.iter(|| {
            let loss = p.log_prob(&b.obs, &b.act).unwrap().mean_all().unwrap();
            loss.backward().unwrap()
        })
    });
    let v = p.flat_params().unwrap();
    c.bench_function("fisher_vector_product_32x32_batch_20000", |bench| {
        bench.iter(|| p.fisher_vector_product(&b.obs, &v).unwrap())
    });
}

fn trpo_update(c: &mut Criterion) {
    let p = policy();
    let b = batch(&p, 50_000);
    let start: Tensor = p.flat_params().unwrap().copy().unwrap();
    let config = TrpoConfig {
        fvp_subsample: 0.2,
        ..TrpoConfig::default()
    };
    let mut group = c.benchmark_group("trpo");
    group.sample_size(10);
    group.bench_function("trpo_update_32x32_50k_samples", |bench| {
        bench.iter(|| {
            p.set_flat_params(&start).unwrap();
            trpo_step(&p, &b, &config).unwrap()
        })
    });
    group.finish();
}

/// criterion's macros generate the undocumented `benches` function.
mod group {
    use super::{forward_backward, trpo_update};
    criterion::criterion_group!(benches, forward_backward, trpo_update);
}
criterion_main!(group::benches);
