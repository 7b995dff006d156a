//! Control steps per second of the same robot on each physics backend (issue 7): rapier3d
//! and MuJoCo (cargo feature `mujoco`), for every robot the MuJoCo backend builds (its
//! `NAMES`, one per robot: the `-v5` variants share the physics), single-threaded, uniformly
//! random actions in `[-1, 1]`, resetting at termination and every 1000 steps. Results are
//! recorded in `docs/robots.md`.
//!
//! `eval "$(scripts/setup_mujoco.sh)"; cargo bench -p mbrl-envs --features mujoco --bench backends`

use criterion::{criterion_main, Criterion, Throughput};
use mbrl_core::env::vector;
use mbrl_envs::robots::mujoco::NAMES;
use mbrl_envs::{make_factory, EnvConfig, PhysicsBackend};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Control steps per benchmark iteration.
const STEPS: u64 = 100;

fn backends(c: &mut Criterion) {
    let mut group = c.benchmark_group("backends");
    group.throughput(Throughput::Elements(STEPS));
    group.sample_size(20);
    // The `-v5` variants share their robot's physics.
    for &name in NAMES.iter().filter(|n| !n.ends_with("-v5")) {
        for backend in [PhysicsBackend::Rapier, PhysicsBackend::Mujoco] {
            let config = EnvConfig {
                name: name.into(),
                backend,
                ..EnvConfig::default()
            };
            let mut env = make_factory(&config).expect("registered robot")().expect("builds");
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
            group.bench_function(format!("{name}/{}", backend.name()), |b| {
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
    }
    group.finish();
}

/// Runs the backend benchmarks with criterion's command-line configuration.
fn benches() {
    let mut criterion = Criterion::default().configure_from_args();
    backends(&mut criterion);
}

criterion_main!(benches);
