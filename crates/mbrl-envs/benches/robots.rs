//! Control steps per second of each robot, single-threaded, uniformly random actions in
//! `[-1, 1]`, resetting every 1000 steps. Results are recorded in `docs/robots.md`.

use criterion::{criterion_main, Criterion, Throughput};
use mbrl_core::env::{vector, Env};
use mbrl_envs::robots::ROBOT_NAMES;
use mbrl_envs::{make_factory, EnvConfig};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Control steps per benchmark iteration.
const STEPS: u64 = 100;

fn robots(c: &mut Criterion) {
    let mut group = c.benchmark_group("robots");
    group.throughput(Throughput::Elements(STEPS));
    group.sample_size(20);
    // The `-v5` variants share their robot's physics.
    for &name in ROBOT_NAMES.iter().filter(|n| !n.ends_with("-v5")) {
        let config = EnvConfig {
            name: name.into(),
            ..EnvConfig::default()
        };
        let mut env = make_factory(&config).expect("registered robot")().expect("robot builds");
        let dim = env.action_space().flat_dim();
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let actions: Vec<_> = (0..1000)
            .map(|_| {
                let a: Vec<f32> = (0..dim).map(|_| rng.random_range(-1.0..=1.0)).collect();
                vector(&a).expect("action tensor")
            })
            .collect();
        env.reset(Some(0)).expect("reset");
        let mut t = 0usize;
        group.bench_function(name, |b| {
            b.iter(|| {
                for _ in 0..STEPS {
                    let step = env.step(&actions[t % actions.len()]).expect("step");
                    t += 1;
                    if step.terminated || step.truncated || t.is_multiple_of(1000) {
                        env.reset(None).expect("reset");
                    }
                }
            })
        });
    }
    group.finish();
}

/// Runs the robot benchmarks with criterion's command-line configuration.
fn benches() {
    let mut criterion = Criterion::default().configure_from_args();
    robots(&mut criterion);
}

criterion_main!(benches);
