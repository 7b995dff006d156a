//! Every trainer of this crate resumes exactly from its checkpoint: one iteration, a save, a
//! restore into a trainer built with another seed, and the next iteration's metrics equal bit
//! for bit (`mbrl_core::resume_check`). Covers the optimisers with state across iterations
//! (PPO's and BPTT's Adam moments) as well as the stateless TRPO ones.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use mbrl_core::algorithm::{Algorithm, AlgorithmEntry, BuildContext};
use mbrl_core::resume_check::check_resume;
use mbrl_core::Result;
use mbrl_envs::{make_factory, EnvConfig};
use mbrl_models::{ensemble_factory, EnsembleConfig};
use mbrl_policy_opt::model_free::{PPO_ENTRY, TRPO_ENTRY};
use mbrl_policy_opt::{me_trpo, vanilla};

/// `entry` on `point2d` with a small ensemble of `members` (none for model-free entries).
fn builder(
    entry: &'static AlgorithmEntry,
    members: Option<usize>,
    config: serde_json::Value,
) -> impl Fn(u64) -> Result<Box<dyn Algorithm>> {
    move |seed| {
        let model_factory = members
            .map(|members| {
                ensemble_factory(EnsembleConfig {
                    members,
                    hidden_sizes: vec![16, 16],
                    batch_size: 128,
                    max_epochs: 5,
                    ..EnsembleConfig::default()
                })
            })
            .transpose()?;
        (entry.build)(BuildContext {
            env_factory: make_factory(&EnvConfig::default()).expect("point2d is registered"),
            model_factory,
            seed,
            config: config.clone(),
        })
    }
}

fn me_trpo_config(optimiser: &str) -> serde_json::Value {
    serde_json::json!({
        "ppo": {"epochs": 2, "num_minibatches": 4},
        "me_trpo": {
            "optimiser": optimiser,
            "steps_per_iteration": 100,
            "imagined_rollouts": 20,
            "start_state_pool": 100,
            "validation_rollouts": 10,
            "max_policy_iterations": 3,
        },
    })
}

#[test]
fn model_free_trpo_and_ppo_resume_exactly() {
    let config = serde_json::json!({
        "model_free": {"steps_per_iteration": 300},
        "ppo": {"epochs": 2, "num_minibatches": 4},
    });
    for entry in [&TRPO_ENTRY, &PPO_ENTRY] {
        check_resume(&builder(entry, None, config.clone()), 3, 40, 2).unwrap();
    }
}

#[test]
fn me_trpo_and_me_ppo_resume_exactly() {
    for optimiser in ["trpo", "ppo"] {
        let build = builder(&me_trpo::ENTRY, Some(2), me_trpo_config(optimiser));
        check_resume(&build, 3, 40, 1).unwrap();
    }
}

#[test]
fn bptt_resumes_exactly() {
    let config = serde_json::json!({
        "bptt": {"steps_per_iteration": 100, "imagined_rollouts": 10, "max_policy_iterations": 4,
                 "evaluate_every": 2, "learning_rate": 3e-3},
    });
    check_resume(&builder(&vanilla::ENTRY, Some(1), config), 3, 40, 1).unwrap();
}
