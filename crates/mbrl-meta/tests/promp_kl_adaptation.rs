//! ProMP's adaptive KL coefficient (`meta.kl_target`): it moves after every batch by the
//! halve/double rule and a checkpoint carries it, so a resumed run continues with the same
//! coefficient.

use mbrl_core::algorithm::{Algorithm, BuildContext};
use mbrl_envs::{make_factory, EnvConfig};
use mbrl_meta::trainer::PROMP_ENTRY;

fn promp(kl_target: f64) -> Box<dyn Algorithm> {
    let factory = make_factory(&EnvConfig {
        name: "point1d-goal".into(),
        task_family: Some("goal-sign".into()),
        ..EnvConfig::default()
    })
    .unwrap();
    (PROMP_ENTRY.build)(BuildContext {
        env_factory: factory,
        model_factory: None,
        seed: 1,
        config: serde_json::json!({
            "meta": {"meta_batch_size": 4, "rollouts_per_task": 5, "outer_learning_rate": 0.01,
                     "kl_penalty": 1e-3, "kl_target": kl_target},
            "policy": {"hidden_sizes": [8]},
        }),
    })
    .unwrap()
}

#[test]
fn the_kl_coefficient_adapts_and_survives_a_checkpoint() {
    // A target far below any KL an update reaches: the coefficient doubles after each batch.
    let mut algo = promp(1e-12);
    let etas: Vec<f64> = (1..=3)
        .map(|i| algo.train_iteration(i).unwrap().metrics["kl_penalty"])
        .collect();
    assert_eq!(etas, vec![1e-3, 2e-3, 4e-3]);
    // A target far above: it halves.
    let mut relaxed = promp(1e6);
    let first = relaxed.train_iteration(1).unwrap().metrics["kl_penalty"];
    let second = relaxed.train_iteration(2).unwrap().metrics["kl_penalty"];
    assert_eq!((first, second), (1e-3, 5e-4));

    let (tensors, state) = algo.save_state().unwrap();
    let mut resumed = promp(1e-12);
    resumed.load_state(tensors, state).unwrap();
    let continued = algo.train_iteration(4).unwrap().metrics["kl_penalty"];
    let restored = resumed.train_iteration(4).unwrap().metrics["kl_penalty"];
    assert_eq!(continued, 8e-3);
    assert_eq!(restored, continued);
}
