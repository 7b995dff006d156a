//! The run loop shared by every algorithm: iterate, evaluate, log, checkpoint, stop cleanly.
//!
//! Each iteration the loop calls [`Algorithm::train_iteration`], evaluates the current policy
//! every `eval_every` iterations (and after the last one) with deterministic actions on seeds
//! from the `Eval` stream, writes one metrics row, and saves a checkpoint every
//! `checkpoint_every` iterations and at the end. A non-finite metric or parameter stops the run
//! with an error before anything is saved, so the last good checkpoint stays the newest. A stop
//! request (Ctrl-C) is honoured between iterations: a checkpoint is saved and the loop returns
//! [`RunOutcome::Interrupted`].

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::algorithm::Algorithm;
use crate::checkpoint::{latest_checkpoint, load_checkpoint, save_checkpoint, CheckpointMeta};
use crate::env::Env;
use crate::metrics::{MetricsLogger, MetricsRow};
use crate::rollout::{eval_seeds, evaluate};
use crate::{Error, Result};

/// Length of a run and how often it evaluates and checkpoints (the `[run]` table).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunConfig {
    /// Training iterations. Default 20.
    pub iterations: u64,
    /// Evaluate every this many iterations (0: only after the last). Default 1.
    pub eval_every: u64,
    /// Episodes per evaluation, at least 1. Default 10 (the SB3 convention).
    pub eval_episodes: usize,
    /// Save a checkpoint every this many iterations (0: only at the end). Default 5.
    pub checkpoint_every: u64,
    /// Number of checkpoints kept on disk. Default 3.
    pub keep_checkpoints: usize,
}

impl Default for RunConfig {
    fn default() -> Self {
        Self {
            iterations: 20,
            eval_every: 1,
            eval_episodes: 10,
            checkpoint_every: 5,
            keep_checkpoints: 3,
        }
    }
}

impl RunConfig {
    /// Checks the values a run cannot use: no iterations, evaluations of no episodes (the loop
    /// always evaluates after the last iteration), no checkpoint kept.
    pub fn validate(&self) -> Result<()> {
        for (key, value) in [
            ("run.iterations", self.iterations),
            ("run.eval_episodes", self.eval_episodes as u64),
            ("run.keep_checkpoints", self.keep_checkpoints as u64),
        ] {
            if value == 0 {
                return Err(Error::InvalidArgument(format!("{key} must be at least 1")));
            }
        }
        Ok(())
    }
}

/// A snapshot of a run's progress, passed to the observer after each iteration.
#[derive(Debug, Clone)]
pub struct Progress {
    /// The iteration just finished.
    pub iteration: u64,
    /// The last iteration of the run.
    pub total_iterations: u64,
    /// Cumulative real environment steps.
    pub env_steps: u64,
    /// Mean return of the iteration's training episodes, if any finished.
    pub train_return: Option<f64>,
    /// Evaluation return, if this iteration evaluated.
    pub eval_return: Option<f64>,
    /// Seconds since the run started (including earlier sessions of a resumed run).
    pub wall_time_s: f64,
    /// The algorithm's [`crate::algorithm::Algorithm::progress_keys`] metrics this iteration
    /// reported, in that order.
    pub highlights: Vec<(String, f64)>,
}

/// Receives progress (a progress bar, log lines).
pub trait RunObserver {
    /// Called after every iteration.
    fn on_iteration(&mut self, progress: &Progress);
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunOutcome {
    /// All iterations ran.
    Completed,
    /// A stop was requested; a checkpoint was saved.
    Interrupted,
}

/// Where a run lives and what identifies its configuration.
pub struct RunContext {
    /// The run directory (metrics files go here, checkpoints in `checkpoints/`).
    pub dir: PathBuf,
    /// Run length and schedule.
    pub run: RunConfig,
    /// The run seed.
    pub seed: u64,
    /// Hash of the configuration (see [`crate::checkpoint::config_hash`]).
    pub config_hash: String,
}

impl RunContext {
    /// The checkpoint folder of the run.
    pub fn checkpoint_dir(&self) -> PathBuf {
        self.dir.join("checkpoints")
    }
}

/// Where training starts: fresh, or after a restored checkpoint.
#[derive(Debug, Clone, Copy, Default)]
pub struct StartPoint {
    /// Iterations already done.
    pub iteration: u64,
    /// Wall time already spent.
    pub wall_time_s: f64,
}

/// Restores the newest checkpoint of `ctx`'s run into `algo`.
pub fn restore_latest(algo: &mut dyn Algorithm, ctx: &RunContext) -> Result<StartPoint> {
    let dir = ctx.checkpoint_dir();
    let path = latest_checkpoint(&dir)?.ok_or_else(|| Error::Malformed {
        path: dir.clone(),
        reason: "no checkpoint to resume from".into(),
    })?;
    let (meta, tensors) = load_checkpoint(&path, algo.name(), &ctx.config_hash)?;
    let wall_time_s = meta.state["wall_time_s"].as_f64().unwrap_or(0.0);
    algo.load_state(tensors, meta.state["algorithm"].clone())?;
    Ok(StartPoint {
        iteration: meta.iteration,
        wall_time_s,
    })
}

fn save(
    algo: &dyn Algorithm,
    ctx: &RunContext,
    iteration: u64,
    env_steps: u64,
    wall_time_s: f64,
) -> Result<PathBuf> {
    let (tensors, state) = algo.save_state()?;
    for (name, t) in &tensors {
        let finite = t
            .to_dtype(candle_core::DType::F64)?
            .flatten_all()?
            .to_vec1::<f64>()?
            .iter()
            .all(|v| v.is_finite());
        if !finite {
            return Err(Error::NonFinite {
                what: format!(
                    "parameter `{name}` (checkpoint not written; the previous one is kept)"
                ),
                iteration,
            });
        }
    }
    let meta = CheckpointMeta {
        algorithm: algo.name().to_string(),
        iteration,
        env_steps,
        config_hash: ctx.config_hash.clone(),
        state: serde_json::json!({ "algorithm": state, "wall_time_s": wall_time_s }),
    };
    save_checkpoint(
        &ctx.checkpoint_dir(),
        &tensors,
        &meta,
        ctx.run.keep_checkpoints,
    )
}

/// Trains `algo` from `start` to `ctx.run.iterations`, evaluating on `eval_env`.
pub fn run_training(
    algo: &mut dyn Algorithm,
    eval_env: &mut dyn Env,
    ctx: &RunContext,
    start: StartPoint,
    observer: &mut dyn RunObserver,
    stop: &AtomicBool,
) -> Result<RunOutcome> {
    ctx.run.validate()?;
    let mut logger = open_logger(&ctx.dir, &algo.metric_columns(), start.iteration)?;
    let seeds = eval_seeds(ctx.seed, ctx.run.eval_episodes);
    let clock = Instant::now();
    let total = ctx.run.iterations;
    for iteration in start.iteration + 1..=total {
        let stats = algo.train_iteration(iteration)?;
        let env_steps = stats.env_steps;
        if let Some((name, _)) = stats.metrics.iter().find(|(_, v)| !v.is_finite()) {
            return Err(Error::NonFinite {
                what: format!("metric `{name}` (the last good checkpoint is kept)"),
                iteration,
            });
        }
        let due =
            (ctx.run.eval_every > 0 && iteration % ctx.run.eval_every == 0) || iteration == total;
        let eval_return = if due {
            let result = evaluate(eval_env, algo.policy(), &seeds)?;
            Some(result.mean_return())
        } else {
            None
        };
        let wall_time_s = start.wall_time_s + clock.elapsed().as_secs_f64();
        let mut row: MetricsRow = stats.metrics.clone();
        row.insert("iteration".into(), iteration as f64);
        row.insert("env_steps".into(), env_steps as f64);
        row.insert("eval_return".into(), eval_return.unwrap_or(f64::NAN));
        row.insert("wall_time_s".into(), wall_time_s);
        logger.log(&row)?;
        let highlights = algo
            .progress_keys()
            .into_iter()
            .filter_map(|key| stats.metrics.get(&key).map(|&v| (key, v)))
            .collect();
        observer.on_iteration(&Progress {
            iteration,
            total_iterations: total,
            env_steps,
            train_return: stats.train_return,
            eval_return,
            wall_time_s,
            highlights,
        });
        let interrupted = stop.load(Ordering::SeqCst);
        let checkpoint_due = (ctx.run.checkpoint_every > 0
            && iteration % ctx.run.checkpoint_every == 0)
            || iteration == total;
        if checkpoint_due || interrupted {
            save(algo, ctx, iteration, env_steps, wall_time_s)?;
        }
        if interrupted {
            return Ok(RunOutcome::Interrupted);
        }
    }
    Ok(RunOutcome::Completed)
}

/// A fresh logger, or for a run resumed from its checkpoint of `start_iteration` (> 0) the
/// existing files up to that iteration.
fn open_logger(dir: &Path, columns: &[String], start_iteration: u64) -> Result<MetricsLogger> {
    if start_iteration > 0 {
        MetricsLogger::append(dir, columns, start_iteration)
    } else {
        MetricsLogger::create(dir, columns)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use candle_core::{Device, Tensor};

    use super::*;
    use crate::algorithm::IterationStats;
    use crate::env::TimeLimit;
    use crate::policy::Policy;
    use crate::testing::{Drift, LinearGaussianPolicy};

    /// Adds 0.01 to the policy bias each iteration; reports NaN at `nan_at`.
    struct Nudge {
        policy: LinearGaussianPolicy,
        steps: u64,
        nan_at: Option<u64>,
    }

    impl Nudge {
        fn new(nan_at: Option<u64>) -> Self {
            Self {
                policy: LinearGaussianPolicy::new(1, 1, 0.0).unwrap(),
                steps: 0,
                nan_at,
            }
        }
        fn bias(&self) -> f32 {
            use crate::policy::GaussianPolicy;
            self.policy.parameters()[1]
                .as_tensor()
                .to_vec1::<f32>()
                .unwrap()[0]
        }
    }

    impl Algorithm for Nudge {
        fn name(&self) -> &str {
            "nudge"
        }
        fn metric_columns(&self) -> Vec<String> {
            vec!["bias".into()]
        }
        fn train_iteration(&mut self, iteration: u64) -> Result<IterationStats> {
            use crate::policy::GaussianPolicy;
            let b = &self.policy.parameters()[1];
            b.set(&(b.as_tensor() + 0.01)?)?;
            self.steps += 10;
            let bias = if self.nan_at == Some(iteration) {
                f64::NAN
            } else {
                self.bias() as f64
            };
            Ok(IterationStats {
                env_steps: self.steps,
                metrics: [("bias".to_string(), bias)].into(),
                train_return: Some(-1.0),
            })
        }
        fn policy(&self) -> &dyn Policy {
            &self.policy
        }
        fn save_state(&self) -> Result<(HashMap<String, Tensor>, serde_json::Value)> {
            use crate::policy::GaussianPolicy;
            Ok((
                HashMap::from([(
                    "bias".to_string(),
                    self.policy.parameters()[1].as_tensor().clone(),
                )]),
                serde_json::json!({ "steps": self.steps }),
            ))
        }
        fn load_state(&mut self, t: HashMap<String, Tensor>, s: serde_json::Value) -> Result<()> {
            use crate::policy::GaussianPolicy;
            self.policy.parameters()[1].set(&t["bias"])?;
            self.steps = s["steps"].as_u64().unwrap();
            Ok(())
        }
    }

    struct Count(u64);
    impl RunObserver for Count {
        fn on_iteration(&mut self, _: &Progress) {
            self.0 += 1;
        }
    }

    fn ctx(dir: &Path, iterations: u64) -> RunContext {
        RunContext {
            dir: dir.to_path_buf(),
            run: RunConfig {
                iterations,
                eval_every: 2,
                eval_episodes: 3,
                checkpoint_every: 2,
                keep_checkpoints: 10,
            },
            seed: 1,
            config_hash: "h".into(),
        }
    }

    fn eval_env() -> TimeLimit<Drift> {
        TimeLimit::new(Drift::new(), 5)
    }

    /// Trains without a stop request and without counting iterations.
    fn train_straight(algo: &mut Nudge, ctx: &RunContext, start: StartPoint) -> Result<RunOutcome> {
        run_training(
            algo,
            &mut eval_env(),
            ctx,
            start,
            &mut Count(0),
            &AtomicBool::new(false),
        )
    }

    fn csv_rows(dir: &Path) -> Vec<Vec<String>> {
        std::fs::read_to_string(dir.join("metrics.csv"))
            .unwrap()
            .lines()
            .skip(1)
            .map(|l| l.split(',').map(String::from).collect())
            .collect()
    }

    #[test]
    fn a_run_logs_every_iteration_and_evaluates_on_schedule() {
        let dir = tempfile::tempdir().unwrap();
        let mut algo = Nudge::new(None);
        let mut obs = Count(0);
        let out = run_training(
            &mut algo,
            &mut eval_env(),
            &ctx(dir.path(), 5),
            StartPoint::default(),
            &mut obs,
            &AtomicBool::new(false),
        )
        .unwrap();
        assert_eq!(out, RunOutcome::Completed);
        assert_eq!(obs.0, 5);
        let rows = csv_rows(dir.path());
        assert_eq!(rows.len(), 5);
        let evals: Vec<bool> = rows.iter().map(|r| r[2] != "NaN").collect();
        assert_eq!(evals, vec![false, true, false, true, true]);
        assert_eq!(rows[4][1], "50");
        assert_eq!(
            crate::checkpoint::list_checkpoints(&dir.path().join("checkpoints"))
                .unwrap()
                .len(),
            3
        );
    }

    #[test]
    fn stop_request_saves_and_resume_continues_where_it_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let c = ctx(dir.path(), 6);
        let mut algo = Nudge::new(None);
        let stop = AtomicBool::new(true);
        let out = run_training(
            &mut algo,
            &mut eval_env(),
            &c,
            StartPoint::default(),
            &mut Count(0),
            &stop,
        )
        .unwrap();
        assert_eq!(out, RunOutcome::Interrupted);
        let mut resumed = Nudge::new(None);
        let start = restore_latest(&mut resumed, &c).unwrap();
        assert_eq!(start.iteration, 1);
        assert_eq!(resumed.bias(), algo.bias());
        train_straight(&mut resumed, &c, start).unwrap();
        let rows = csv_rows(dir.path());
        let iterations: Vec<&str> = rows.iter().map(|r| r[0].as_str()).collect();
        assert_eq!(iterations, vec!["1", "2", "3", "4", "5", "6"]);
        let mut straight = Nudge::new(None);
        let other = tempfile::tempdir().unwrap();
        train_straight(&mut straight, &ctx(other.path(), 6), StartPoint::default()).unwrap();
        assert_eq!(straight.bias(), resumed.bias());
        assert_eq!(csv_rows(other.path())[5][4], rows[5][4]);
    }

    #[test]
    fn a_killed_run_resumes_from_its_last_checkpoint_and_relogs_later_iterations() {
        let dir = tempfile::tempdir().unwrap();
        train_straight(
            &mut Nudge::new(None),
            &ctx(dir.path(), 3),
            StartPoint::default(),
        )
        .unwrap();
        // Killed after logging iteration 3 and before its checkpoint was written.
        for ext in ["json", "safetensors"] {
            std::fs::remove_file(dir.path().join(format!("checkpoints/ckpt-000003.{ext}")))
                .unwrap();
        }
        let c = ctx(dir.path(), 6);
        let mut resumed = Nudge::new(None);
        let start = restore_latest(&mut resumed, &c).unwrap();
        assert_eq!(start.iteration, 2);
        train_straight(&mut resumed, &c, start).unwrap();
        let other = tempfile::tempdir().unwrap();
        train_straight(
            &mut Nudge::new(None),
            &ctx(other.path(), 6),
            StartPoint::default(),
        )
        .unwrap();
        let without_wall_time = |rows: Vec<Vec<String>>| -> Vec<Vec<String>> {
            rows.into_iter()
                .map(|mut r| {
                    r.remove(3);
                    r
                })
                .collect()
        };
        assert_eq!(
            without_wall_time(csv_rows(dir.path())),
            without_wall_time(csv_rows(other.path()))
        );
    }

    #[test]
    fn nan_stops_the_run_and_keeps_the_last_good_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let mut algo = Nudge::new(Some(3));
        let err =
            train_straight(&mut algo, &ctx(dir.path(), 6), StartPoint::default()).unwrap_err();
        assert!(
            err.to_string()
                .contains("non-finite value in metric `bias`"),
            "{err}"
        );
        let latest = crate::checkpoint::latest_checkpoint(&dir.path().join("checkpoints"))
            .unwrap()
            .unwrap();
        assert!(latest.ends_with("ckpt-000002.json"));
    }

    #[test]
    fn a_run_of_no_evaluation_episodes_is_refused_before_training() {
        let dir = tempfile::tempdir().unwrap();
        let mut ctx = ctx(dir.path(), 2);
        ctx.run.eval_episodes = 0;
        let mut algo = Nudge::new(None);
        let err = train_straight(&mut algo, &ctx, StartPoint::default()).unwrap_err();
        assert!(
            err.to_string()
                .contains("run.eval_episodes must be at least 1"),
            "{err}"
        );
        assert_eq!(algo.steps, 0, "no iteration may run");
    }

    #[test]
    fn resuming_with_another_config_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let c = ctx(dir.path(), 2);
        train_straight(&mut Nudge::new(None), &c, StartPoint::default()).unwrap();
        let other = RunContext {
            config_hash: "different".into(),
            ..ctx(dir.path(), 2)
        };
        let err = restore_latest(&mut Nudge::new(None), &other).unwrap_err();
        assert!(matches!(err, Error::CheckpointMismatch { .. }));
        let _ = Device::Cpu;
    }
}
