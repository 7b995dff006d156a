//! MB-MPO learns `point2d` to within 10% of the optimal return (the thesis's 2D-point
//! environment of Sec. 5.5.4 / Appendix B.3), with the same criterion as ME-TRPO's learning
//! test: the deterministic pre-update policy is compared with the optimal policy
//! `a = clip(-s, -0.1, 0.1)` on the same 50 evaluation start states, returns being negative,
//! "within 10%" means `return >= 1.1 * optimum`. Also: the same seed gives identical metrics,
//! and a checkpoint restores the same policy and continues identically.
//! (Configuration as `configs/mb-mpo/point2d.toml`.)

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use mbrl_core::algorithm::{Algorithm, BuildContext};
use mbrl_core::resume_check::deterministic_metrics;
use mbrl_core::rollout::{eval_seeds, evaluate};
use mbrl_envs::point2d::OptimalPolicy as Optimal;
use mbrl_envs::{make_factory, EnvConfig};
use mbrl_meta::mb_mpo::ENTRY;
use mbrl_models::{ensemble_factory, EnsembleConfig};

fn mb_mpo(seed: u64, max_epochs: usize, extra: serde_json::Value) -> Box<dyn Algorithm> {
    let model = EnsembleConfig {
        members: 5,
        hidden_sizes: vec![64, 64],
        batch_size: 256,
        max_epochs,
        ..EnsembleConfig::default()
    };
    let mut config = serde_json::json!({
        "mb_mpo": {
            "initial_random_steps": 300,
            "steps_per_iteration": 300,
            "meta_steps": 15,
            "tasks_per_model": 1,
            "rollouts_per_task": 40,
            "start_state_pool": 1000,
        },
    });
    if let (Some(base), Some(extra)) = (config["mb_mpo"].as_object_mut(), extra.as_object()) {
        base.extend(extra.clone());
    }
    (ENTRY.build)(BuildContext {
        env_factory: make_factory(&EnvConfig::default()).unwrap(),
        model_factory: Some(ensemble_factory(model).unwrap()),
        seed,
        config,
    })
    .unwrap()
}

#[test]
fn mb_mpo_reaches_ten_percent_of_the_optimum_on_point2d() {
    let factory = make_factory(&EnvConfig::default()).unwrap();
    let seeds = eval_seeds(7, 50);
    let optimum = evaluate(factory().unwrap().as_mut(), &Optimal, &seeds)
        .unwrap()
        .mean_return();
    let mut algo = mb_mpo(0, 300, serde_json::json!({}));
    let untrained = evaluate(factory().unwrap().as_mut(), algo.policy(), &seeds)
        .unwrap()
        .mean_return();
    eprintln!("untrained policy: return {untrained:.3} (optimum {optimum:.3})");
    assert!(
        untrained < 2.0 * optimum,
        "the task is trivial: {untrained:.3}"
    );
    let mut returns = Vec::new();
    for i in 1..=2 {
        let stats = algo.train_iteration(i).unwrap();
        let ret = evaluate(factory().unwrap().as_mut(), algo.policy(), &seeds)
            .unwrap()
            .mean_return();
        let m = &stats.metrics;
        eprintln!(
            "iteration {i}: {} real steps, return {ret:.3} (optimum {optimum:.3}), imagined \
             pre {:.3} post {:.3}, kl {:.4}, times data {:.2}s model {:.2}s policy {:.2}s",
            stats.env_steps,
            m["pre_update_imagined_return"],
            m["post_update_imagined_return"],
            m["meta_kl"],
            m["data_time_s"],
            m["model_time_s"],
            m["policy_time_s"],
        );
        returns.push(ret);
    }
    let last = returns[returns.len() - 1];
    assert!(
        last >= 1.1 * optimum,
        "return {last:.3} not within 10% of {optimum:.3}: {returns:?}"
    );
}

/// Small settings (and the biased, noisy models, so that their random draws are covered too).
fn small() -> serde_json::Value {
    serde_json::json!({"meta_steps": 2, "rollouts_per_task": 10, "model_bias_max": 0.1})
}

#[test]
fn mb_mpo_is_deterministic_and_resumes_from_a_checkpoint() {
    let mut a = mb_mpo(3, 30, small());
    let mut b = mb_mpo(3, 30, small());
    let a1 = a.train_iteration(1).unwrap();
    let b1 = b.train_iteration(1).unwrap();
    assert_eq!(
        deterministic_metrics(&a1.metrics),
        deterministic_metrics(&b1.metrics)
    );
    assert_eq!(a1.env_steps, 600);

    let (tensors, state) = a.save_state().unwrap();
    let mut resumed = mb_mpo(99, 30, small());
    resumed.load_state(tensors, state).unwrap();
    let factory = make_factory(&EnvConfig::default()).unwrap();
    let seeds = eval_seeds(5, 5);
    let score = |algo: &dyn Algorithm| {
        evaluate(factory().unwrap().as_mut(), algo.policy(), &seeds)
            .unwrap()
            .mean_return()
    };
    assert_eq!(score(a.as_ref()), score(resumed.as_ref()));
    let a2 = a.train_iteration(2).unwrap();
    let r2 = resumed.train_iteration(2).unwrap();
    assert_eq!(a2.env_steps, r2.env_steps);
    assert_eq!(
        deterministic_metrics(&a2.metrics),
        deterministic_metrics(&r2.metrics)
    );
    assert_eq!(score(a.as_ref()), score(resumed.as_ref()));
}

#[test]
fn the_ablations_run_without_adaptation_and_without_tailored_exploration() {
    let mut extra = small();
    extra["inner_step_size"] = 0.0.into();
    extra["tailored_exploration"] = false.into();
    let mut algo = mb_mpo(1, 30, extra);
    let stats = algo.train_iteration(1).unwrap();
    for key in [
        "pre_update_imagined_return",
        "post_update_imagined_return",
        "train_return",
    ] {
        assert!(stats.metrics[key].is_finite(), "{key}: {:?}", stats.metrics);
    }
}
