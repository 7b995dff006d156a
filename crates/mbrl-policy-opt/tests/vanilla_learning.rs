//! Vanilla model-based RL (Algorithm 1, BPTT through one learned model) learns `point2d`,
//! whose linear dynamics a small model captures: it must beat standing still (about -80,
//! `scripts/point2d_optimum.py`) by far and come within 25% of the optimal policy on the same
//! evaluation start states.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use mbrl_core::algorithm::BuildContext;
use mbrl_core::rollout::{eval_seeds, evaluate};
use mbrl_core::testing::random_return;
use mbrl_envs::point2d::OptimalPolicy as Optimal;
use mbrl_envs::{make_factory, EnvConfig};
use mbrl_models::{ensemble_factory, EnsembleConfig};
use mbrl_policy_opt::vanilla::ENTRY;

#[test]
fn bptt_through_one_model_learns_point2d() {
    let model = EnsembleConfig {
        members: 1,
        hidden_sizes: vec![64, 64],
        batch_size: 256,
        max_epochs: 300,
        ..EnsembleConfig::default()
    };
    let config = serde_json::json!({
        "bptt": {"steps_per_iteration": 300, "imagined_rollouts": 100, "max_policy_iterations": 150, "learning_rate": 3e-3},
    });
    let factory = make_factory(&EnvConfig::default()).unwrap();
    let mut algo = (ENTRY.build)(BuildContext {
        env_factory: factory.clone(),
        model_factory: Some(ensemble_factory(model).unwrap()),
        seed: 0,
        config,
    })
    .unwrap();
    let seeds = eval_seeds(5, 50);
    let optimum = evaluate(factory().unwrap().as_mut(), &Optimal, &seeds)
        .unwrap()
        .mean_return();
    let random = random_return(&factory, &seeds).unwrap();
    eprintln!("point2d: optimum {optimum:.3}, random actions {random:.3}");
    let mut returns = Vec::new();
    for i in 1..=3 {
        algo.train_iteration(i).unwrap();
        let ret = evaluate(factory().unwrap().as_mut(), algo.policy(), &seeds)
            .unwrap()
            .mean_return();
        eprintln!("BPTT iteration {i}: return {ret:.3} (optimum {optimum:.3})");
        returns.push(ret);
    }
    // Measured (AMD EPYC, 2026-12-07): -13.369 after each of the 3 iterations (300 real steps
    // each); optimum -13.240 and random actions -82.273 on the same 50 episodes. Threshold:
    // within 25% of the optimum (-16.55).
    let best = returns.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    assert!(
        best >= 1.25 * optimum,
        "{returns:?} vs optimum {optimum} (random actions {random})"
    );
}
