//! Asynchronous ME-TRPO learns (threads backend, simulated real time): `point2d` to within
//! 20% of the optimal return in 360 real steps and Gymnasium's Pendulum-v1 to above -400 in
//! 15k; asynchronous MB-MPO learns `point2d` to within 20% in 360 steps. Asynchronous runs are
//! not bitwise reproducible, so the thresholds leave room for the scheduling's noise; the
//! numbers of the runs that set them are in each test's comment.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use mbrl_async::trainer::{ASYNC_MB_MPO_ENTRY, ASYNC_ME_TRPO_ENTRY};
use mbrl_core::algorithm::{Algorithm, AlgorithmEntry, BuildContext};
use mbrl_core::policy::RandomPolicy;
use mbrl_core::rollout::{eval_seeds, evaluate};
use mbrl_core::testing::learning_curve;
use mbrl_envs::point2d::OptimalPolicy as Optimal;
use mbrl_envs::{make_factory, EnvConfig};
use mbrl_models::{ensemble_factory, EarlyStoppingRule, EnsembleConfig};

fn env(name: &str) -> EnvConfig {
    EnvConfig {
        name: name.into(),
        ..EnvConfig::default()
    }
}

fn build(name: &str, hidden: usize, config: serde_json::Value) -> Box<dyn Algorithm> {
    build_entry(&ASYNC_ME_TRPO_ENTRY, name, hidden, config)
}

fn build_entry(
    entry: &AlgorithmEntry,
    name: &str,
    hidden: usize,
    config: serde_json::Value,
) -> Box<dyn Algorithm> {
    let model = EnsembleConfig {
        members: 5,
        hidden_sizes: vec![hidden, hidden],
        batch_size: 256,
        early_stopping: EarlyStoppingRule::MovingAverage,
        ..EnsembleConfig::default()
    };
    (entry.build)(BuildContext {
        env_factory: make_factory(&env(name)).unwrap(),
        model_factory: Some(ensemble_factory(model).unwrap()),
        seed: 0,
        config,
    })
    .unwrap()
}

/// Trains `iterations` iterations, returning (real steps, evaluation return) after each.
fn train(algo: &mut dyn Algorithm, name: &str, iterations: u64, seeds: &[u64]) -> Vec<(u64, f64)> {
    let factory = make_factory(&env(name)).unwrap();
    learning_curve(algo, &factory, seeds, iterations).unwrap()
}

#[test]
fn async_me_trpo_learns_point2d() {
    let seeds = eval_seeds(7, 50);
    let factory = make_factory(&env("point2d")).unwrap();
    let optimum = evaluate(factory().unwrap().as_mut(), &Optimal, &seeds)
        .unwrap()
        .mean_return();
    let probe = factory().unwrap();
    let random = RandomPolicy::new(probe.action_space().as_box().unwrap().clone()).unwrap();
    let random_return = evaluate(factory().unwrap().as_mut(), &random, &seeds)
        .unwrap()
        .mean_return();
    let config = serde_json::json!({
        "trpo": {"max_kl": 0.05, "fvp_subsample": 0.2},
        "me_trpo": {"imagined_rollouts": 200, "start_state_pool": 1000},
        "async": {"rollouts_per_iteration": 3, "step_seconds": 0.02},
    });
    let mut algo = build("point2d", 64, config);
    let history = train(algo.as_mut(), "point2d", 4, &seeds);
    let (steps, ret) = *history.last().unwrap();
    eprintln!("optimum {optimum:.2}, random {random_return:.2}");
    // Measured (Intel Xeon, 2 cores): -16.25 after 360 steps, optimum -16.03, random -91.07.
    assert_eq!(steps, 360, "{history:?}");
    assert!(
        ret >= 1.2 * optimum,
        "{ret:.2} vs optimum {optimum:.2}: {history:?}"
    );
}

#[test]
fn async_me_trpo_learns_pendulum_within_15k_real_steps() {
    let seeds = eval_seeds(3, 10);
    let config = serde_json::json!({
        "advantage": {"gamma": 0.99, "gae_lambda": 0.95},
        "trpo": {"max_kl": 0.05, "fvp_subsample": 0.2},
        "me_trpo": {"imagined_rollouts": 200, "start_state_pool": 2000},
        "async": {"rollouts_per_iteration": 15, "step_seconds": 0.005},
    });
    let factory = make_factory(&env("pendulum")).unwrap();
    let probe = factory().unwrap();
    let random = RandomPolicy::new(probe.action_space().as_box().unwrap().clone()).unwrap();
    let random_return = evaluate(factory().unwrap().as_mut(), &random, &seeds)
        .unwrap()
        .mean_return();
    let mut algo = build("pendulum", 128, config);
    let history = train(algo.as_mut(), "pendulum", 5, &seeds);
    let (steps, ret) = *history.last().unwrap();
    eprintln!("random {random_return:.1}");
    // Measured (Intel Xeon, 2 cores, alone): -303 after 3000 steps, -174 and -161 after 15000
    // in two runs; random actions -1277.2. The thresholds allow for other tests beside it.
    assert_eq!(steps, 15_000, "{history:?}");
    assert!(ret > -400.0 && ret > random_return + 500.0, "{history:?}");
}

#[test]
fn async_mb_mpo_learns_point2d() {
    let seeds = eval_seeds(7, 50);
    let factory = make_factory(&env("point2d")).unwrap();
    let optimum = evaluate(factory().unwrap().as_mut(), &Optimal, &seeds)
        .unwrap()
        .mean_return();
    let config = serde_json::json!({
        "mb_mpo": {"tasks_per_model": 1, "rollouts_per_task": 40, "start_state_pool": 1000},
        "async": {"rollouts_per_iteration": 3, "step_seconds": 0.1},
    });
    let mut algo = build_entry(&ASYNC_MB_MPO_ENTRY, "point2d", 64, config);
    let history = train(algo.as_mut(), "point2d", 4, &seeds);
    let (steps, ret) = *history.last().unwrap();
    // Measured (Intel Xeon, 2 cores, with a CI run beside it): -16.45 after 180 steps, -16.18
    // after 360 (30 meta steps); the optimum -16.03, random actions -91.07.
    assert_eq!(steps, 360, "{history:?}");
    assert!(
        ret >= 1.2 * optimum,
        "{ret:.2} vs optimum {optimum:.2}: {history:?}"
    );
}
