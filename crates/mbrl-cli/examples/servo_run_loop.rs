//! The run loop from code, without the command line: PPO on the user-defined servo of
//! `servo/mod.rs` writes a run directory (`metrics.csv`, `metrics.jsonl`, safetensors
//! checkpoints), stops after 3 of its 6 iterations, and a second session resumes it from the
//! newest checkpoint and finishes.
//!
//! Run: `cargo run --release --example servo_run_loop -- [RUN_DIR]` (default `runs/servo-ppo`).

use std::sync::atomic::AtomicBool;

use mbrl_core::algorithm::Algorithm;
use mbrl_core::checkpoint::config_hash;
use mbrl_core::runner::{
    restore_latest, run_training, Progress, RunConfig, RunContext, RunObserver, StartPoint,
};
use mbrl_core::Result;
use mbrl_policy_opt::model_free::{Method, ModelFree, ModelFreeConfig, ModelFreeSettings};
use mbrl_policy_opt::ppo::PpoConfig;

mod servo;

/// Prints one line per iteration.
struct PrintProgress;

impl RunObserver for PrintProgress {
    fn on_iteration(&mut self, p: &Progress) {
        let eval = p.eval_return.map_or("-".into(), |r| format!("{r:.2}"));
        println!(
            "iteration {}/{}: {} real steps, return {eval}",
            p.iteration, p.total_iterations, p.env_steps
        );
    }
}

/// Trains PPO on the servo in `dir` up to `iterations`, resuming from the newest checkpoint
/// when `resume` is set; returns the iteration it started after.
fn session(dir: &std::path::Path, iterations: u64, resume: bool) -> Result<u64> {
    let settings = ModelFreeSettings {
        data: ModelFreeConfig {
            steps_per_iteration: 2000,
            ..Default::default()
        },
        ppo: PpoConfig {
            learning_rate: 1e-3,
            ..Default::default()
        },
        ..Default::default()
    };
    std::fs::create_dir_all(dir).map_err(|e| mbrl_core::Error::io(dir, e))?;
    let factory = servo::servo_factory()?;
    let mut algo = ModelFree::new(&factory, 0, Method::Ppo, settings.clone())?;
    // What identifies the configuration: a checkpoint of another one is refused on resume.
    let identity = serde_json::json!({ "ppo": settings.ppo, "model_free": settings.data });
    let ctx = RunContext {
        dir: dir.to_path_buf(),
        run: RunConfig {
            iterations,
            eval_episodes: 5,
            checkpoint_every: 1,
            ..Default::default()
        },
        seed: 0,
        config_hash: config_hash(&identity),
    };
    let start = if resume {
        restore_latest(&mut algo, &ctx)?
    } else {
        StartPoint::default()
    };
    let stop = AtomicBool::new(false); // set it from a Ctrl-C handler to stop cleanly
    run_training(
        &mut algo,
        factory()?.as_mut(),
        &ctx,
        start,
        &mut PrintProgress,
        &stop,
    )?;
    println!("{} done: {:?}", algo.name(), dir.join("metrics.csv"));
    Ok(start.iteration)
}

fn main() -> Result<()> {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "runs/servo-ppo".into());
    session(dir.as_ref(), 3, false)?;
    session(dir.as_ref(), 6, true)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_stopped_run_resumes_and_logs_every_iteration_once() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(super::session(dir.path(), 3, false).unwrap(), 0);
        assert_eq!(super::session(dir.path(), 6, true).unwrap(), 3);
        let metrics = std::fs::read_to_string(dir.path().join("metrics.csv")).unwrap();
        let iterations: Vec<&str> = metrics
            .lines()
            .skip(1)
            .map(|l| l.split(',').next().unwrap())
            .collect();
        assert_eq!(iterations, ["1", "2", "3", "4", "5", "6"], "{metrics}");
    }
}
