//! The model-free meta-learners resume exactly from their checkpoints
//! (`mbrl_core::resume_check`): ProMP and MAML-VPG carry their outer Adam's moments and step
//! count (and ProMP its adaptive KL coefficient), MAML-TRPO needs none; the learnable inner
//! step sizes are saved with the policy.

use mbrl_core::algorithm::{Algorithm, AlgorithmEntry, BuildContext};
use mbrl_core::resume_check::check_resume;
use mbrl_core::Result;
use mbrl_envs::{make_factory, EnvConfig};
use mbrl_meta::trainer::{MAML_TRPO_ENTRY, MAML_VPG_ENTRY, PROMP_ENTRY};

fn builder(
    entry: &'static AlgorithmEntry,
    meta: serde_json::Value,
) -> impl Fn(u64) -> Result<Box<dyn Algorithm>> {
    move |seed| {
        (entry.build)(BuildContext {
            env_factory: make_factory(&EnvConfig {
                name: "point1d-goal".into(),
                task_family: Some("goal-sign".into()),
                ..EnvConfig::default()
            })
            .expect("point1d-goal is registered"),
            model_factory: None,
            seed,
            config: serde_json::json!({"meta": meta.clone(), "policy": {"hidden_sizes": [8]}}),
        })
    }
}

#[test]
fn promp_maml_vpg_and_maml_trpo_resume_exactly() {
    let small = serde_json::json!({
        "meta_batch_size": 4, "rollouts_per_task": 5, "outer_learning_rate": 0.01,
        "kl_target": 0.01, "learn_inner_step_size": true,
    });
    for entry in [&PROMP_ENTRY, &MAML_VPG_ENTRY] {
        check_resume(&builder(entry, small.clone()), 1, 7, 2).unwrap();
    }
    let mut trpo = small;
    trpo["learn_inner_step_size"] = false.into();
    trpo.as_object_mut().unwrap().remove("kl_target");
    check_resume(&builder(&MAML_TRPO_ENTRY, trpo), 1, 7, 2).unwrap();
}
