//! The configuration variants of the ME-TRPO trainer run and learn `point2d`: ME-PPO
//! (`me_trpo.optimiser = "ppo"`, used in Ch. 8), single-model TRPO (`model.members = 1`, the
//! Ch. 4 baseline), and the policy-phase judges of the Appendix A.4.2 ablation (`validation` =
//! `none`, a fixed number of updates; `one_model`; `trpo_mean`; `real`, the oracle); biased,
//! noisy models (`model_bias_max`, Sec. 5.5.3) make the imagined return worse. Standing still scores about -80 and the optimum about -14.7
//! (`scripts/point2d_optimum.py`); each variant must pass -20 after two iterations (measured when written: all three
//! reached about -13.2 on these 30 evaluation starts, seed 0).

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use mbrl_core::algorithm::{Algorithm, BuildContext};
use mbrl_core::rollout::{eval_seeds, evaluate};
use mbrl_core::Result;
use mbrl_envs::{make_factory, EnvConfig};
use mbrl_models::{ensemble_factory, EnsembleConfig};
use mbrl_policy_opt::me_trpo::ENTRY;

/// Mean evaluation return after two iterations, and the real steps counted.
fn learns(members: usize, me_trpo: serde_json::Value) -> f64 {
    trained(members, me_trpo).0
}

/// ME-TRPO on `point2d` with `members` models and `me_trpo` over the small test settings.
fn build(members: usize, me_trpo: serde_json::Value) -> Result<Box<dyn Algorithm>> {
    let model = EnsembleConfig {
        members,
        hidden_sizes: vec![64, 64],
        batch_size: 256,
        max_epochs: 200,
        ..EnsembleConfig::default()
    };
    let mut table = serde_json::json!({
        "steps_per_iteration": 300,
        "imagined_rollouts": 200,
        "start_state_pool": 1000,
        "validation_rollouts": 100,
        "max_policy_iterations": 40,
    });
    for (k, v) in me_trpo.as_object().unwrap() {
        table[k] = v.clone();
    }
    let config = serde_json::json!({
        "trpo": {"max_kl": 0.05, "fvp_subsample": 0.2},
        "ppo": {"learning_rate": 3e-3},
        "me_trpo": table,
    });
    (ENTRY.build)(BuildContext {
        env_factory: make_factory(&EnvConfig::default()).unwrap(),
        model_factory: Some(ensemble_factory(model).unwrap()),
        seed: 0,
        config,
    })
}

fn trained(members: usize, me_trpo: serde_json::Value) -> (f64, u64) {
    let mut algo = build(members, me_trpo).unwrap();
    let mut env_steps = 0;
    for i in 1..=2 {
        env_steps = algo.train_iteration(i).unwrap().env_steps;
    }
    let factory = make_factory(&EnvConfig::default()).unwrap();
    let ret = evaluate(
        factory().unwrap().as_mut(),
        algo.policy(),
        &eval_seeds(9, 30),
    )
    .unwrap()
    .mean_return();
    (ret, env_steps)
}

#[test]
fn me_ppo_learns_point2d() {
    let ret = learns(5, serde_json::json!({"optimiser": "ppo"}));
    eprintln!("ME-PPO: {ret:.2}");
    assert!(ret > -20.0, "{ret}");
}

#[test]
fn single_model_trpo_and_fixed_updates_learn_point2d() {
    let single = learns(1, serde_json::json!({}));
    let fixed = learns(
        5,
        serde_json::json!({"validation": "none", "max_policy_iterations": 20}),
    );
    eprintln!("single model: {single:.2}, fixed updates: {fixed:.2}");
    assert!(single > -20.0 && fixed > -20.0, "{single} {fixed}");
}

/// The other judges of Appendix A.4.2 run and learn too; the oracle's real episodes are not
/// counted as collected steps (2 iterations x 300).
#[test]
fn one_model_trpo_mean_and_oracle_validation_learn_point2d() {
    for rule in ["one_model", "trpo_mean", "real"] {
        let (ret, env_steps) = trained(5, serde_json::json!({"validation": rule}));
        eprintln!("validation {rule}: {ret:.2}, {env_steps} real steps");
        assert!(ret > -20.0, "{rule}: {ret}");
        assert_eq!(env_steps, 600, "{rule}");
    }
}

#[test]
fn biased_models_mislead_the_policy_phase() {
    // Sec. 5.5.3's wrong models: every imagined step drifts by b_k ~ U(0, 1) per member, so
    // the same seed imagines a far worse return than with the clean ensemble; and the setting
    // is checked.
    let imagined = |bias: Option<f64>| {
        let mut table = serde_json::json!({"max_policy_iterations": 5});
        if let Some(b) = bias {
            table["model_bias_max"] = b.into();
        }
        let mut algo = build(5, table).unwrap();
        algo.train_iteration(1).unwrap().metrics["imagined_return"]
    };
    let (clean, biased) = (imagined(None), imagined(Some(1.0)));
    eprintln!("imagined return: clean {clean:.2}, biased {biased:.2}");
    assert!(biased < clean - 50.0, "biased {biased} vs clean {clean}");
    assert!(build(5, serde_json::json!({"model_bias_max": -1.0})).is_err());
}
