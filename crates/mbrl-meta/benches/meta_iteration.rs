//! One MB-MPO meta-iteration at the thesis's settings (issue 6's benchmark): 20 tasks (4 per
//! member of a 5 x 512-512 weight-normalised ensemble), 50 imagined rollouts of 200 steps per
//! task before and after the inner step (1000 + 1000 rollouts), a 32-32 tanh policy, one
//! MAML-TRPO step (second order through the inner step, finite-difference Fisher-vector
//! products, 10 CG iterations), on the rapier half-cheetah.
//!
//! The ensemble is fitted briefly on the 5000 initial random steps (`--model-epochs`, default
//! 5): a meta step costs the same whatever the model's accuracy. One training iteration runs
//! `--meta-steps` meta steps (default 3); the bench prints the per-meta-step imagination and
//! meta-update times as one JSON line, plus the iteration's data and model-fit times.
//!
//! Run (mimalloc's purge off, as `mbrl-cli` sets it; see crates/mbrl-cli/src/allocator.rs):
//! `MIMALLOC_PURGE_DELAY=-1 RAYON_NUM_THREADS=2 CANDLE_NUM_THREADS=1 cargo bench -p mbrl-meta
//! --bench meta_iteration -- [--meta-steps N] [--model-epochs N] [--fvp-subsample F]`.

use mbrl_core::algorithm::BuildContext;
use mbrl_envs::{make_factory, EnvConfig};
use mbrl_meta::mb_mpo::ENTRY;
use mbrl_models::{ensemble_factory, EarlyStoppingRule, EnsembleConfig};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The value after `flag` on the command line, or `default`.
fn arg<T: std::str::FromStr>(args: &[String], flag: &str, default: T) -> T {
    args.iter()
        .position(|a| a == flag)
        .and_then(|i| args.get(i + 1))
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{flag} takes a number, got {v}"))
        })
        .unwrap_or(default)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let meta_steps: usize = arg(&args, "--meta-steps", 3);
    let model_epochs: usize = arg(&args, "--model-epochs", 5);
    let fvp_subsample: f64 = arg(&args, "--fvp-subsample", 1.0);
    let model = EnsembleConfig {
        members: 5,
        hidden_sizes: vec![512, 512],
        weight_norm: true,
        batch_size: 500,
        max_epochs: model_epochs,
        early_stopping: EarlyStoppingRule::Never,
        ..EnsembleConfig::default()
    };
    let env = EnvConfig {
        name: "half-cheetah".into(),
        max_episode_steps: Some(200),
        ..EnvConfig::default()
    };
    let config = serde_json::json!({
        "policy": {"hidden_sizes": [32, 32]},
        "advantage": {"gamma": 0.99, "gae_lambda": 1.0},
        "trpo": {"max_kl": 0.01, "fvp_subsample": fvp_subsample},
        "mb_mpo": {
            "initial_random_steps": 5000,
            "steps_per_iteration": 4000,
            "meta_steps": meta_steps,
            "tasks_per_model": 4,
            "rollouts_per_task": 50,
            "inner_step_size": 0.001,
        },
    });
    let mut algo = (ENTRY.build)(BuildContext {
        env_factory: make_factory(&env).expect("half-cheetah"),
        model_factory: Some(ensemble_factory(model).expect("ensemble")),
        seed: 0,
        config,
    })
    .expect("mb-mpo");
    let stats = algo.train_iteration(0).expect("iteration");
    let m = |key: &str| stats.metrics.get(key).copied().unwrap_or(f64::NAN);
    let steps = meta_steps as f64;
    println!(
        "{{\"name\": \"mb_mpo_meta_iteration\", \"meta_steps\": {meta_steps}, \
         \"fvp_subsample\": {fvp_subsample}, \"imagination_s_per_step\": {:.3}, \
         \"meta_update_s_per_step\": {:.3}, \"meta_step_s\": {:.3}, \"data_s\": {:.3}, \
         \"model_fit_s\": {:.3}}}",
        m("imagination_time_s") / steps,
        m("meta_update_time_s") / steps,
        (m("imagination_time_s") + m("meta_update_time_s")) / steps,
        m("data_time_s"),
        m("model_time_s"),
    );
}
