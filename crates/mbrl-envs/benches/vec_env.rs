//! Control steps per second of a `VecEnv` of 20 half-cheetahs (a meta-RL task's rollouts, or
//! a sampler's batch), uniformly random actions in `[-1, 1]`. The copies step on rayon's
//! threads: compare `RAYON_NUM_THREADS=1` with the default. Results are in `docs/robots.md`.

use candle_core::Tensor;
use criterion::{criterion_main, Criterion, Throughput};
use mbrl_core::vec_env::VecEnv;
use mbrl_envs::{make_factory, EnvConfig};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Environment copies.
const COPIES: usize = 20;
/// Batched steps per benchmark iteration.
const STEPS: usize = 10;

fn vec_env(c: &mut Criterion) {
    let mut group = c.benchmark_group("vec_env");
    group.throughput(Throughput::Elements((COPIES * STEPS) as u64));
    group.sample_size(20);
    let config = EnvConfig {
        name: "half-cheetah".into(),
        ..EnvConfig::default()
    };
    let factory = make_factory(&config).expect("registered robot");
    let mut venv = VecEnv::new(&factory, COPIES).expect("copies build");
    let dim = venv.action_space().flat_dim();
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let actions: Vec<Tensor> = (0..100)
        .map(|_| {
            let a: Vec<f32> = (0..COPIES * dim)
                .map(|_| rng.random_range(-1.0..=1.0))
                .collect();
            Tensor::from_vec(a, (COPIES, dim), &candle_core::Device::Cpu).expect("actions")
        })
        .collect();
    venv.reset(Some(0)).expect("reset");
    let mut t = 0usize;
    let threads = rayon::current_num_threads();
    group.bench_function(format!("half-cheetah-x{COPIES}/{threads}-threads"), |b| {
        b.iter(|| {
            for _ in 0..STEPS {
                venv.step(&actions[t % actions.len()]).expect("step");
                t += 1;
            }
        })
    });
    group.finish();
}

/// Runs the benchmark with criterion's command-line configuration.
fn benches() {
    let mut criterion = Criterion::default().configure_from_args();
    vec_env(&mut criterion);
}

criterion_main!(benches);
