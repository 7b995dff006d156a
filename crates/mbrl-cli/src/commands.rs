//! What each subcommand does: `train`, `eval`, `envs`, `algos`, `validate`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{Context, Result};
use mbrl_core::algorithm::{Algorithm, BuildContext};
use mbrl_core::env::{Env, EnvFactory};
use mbrl_core::rollout::{eval_seeds, evaluate};
use mbrl_core::runner::{restore_latest, run_training, RunContext, RunOutcome, StartPoint};

use crate::config::{self, ExperimentConfig};
use crate::progress::ProgressReporter;
use crate::run_dir::{self, RunLog, CONFIG_FILE};
use crate::{algorithms, UsageError};

/// Arguments of `train`.
pub struct TrainArgs {
    /// Config file; `None` uses the embedded default.
    pub config: Option<PathBuf>,
    /// Overrides the config's seed.
    pub seed: Option<u64>,
    /// Parent of run directories.
    pub out: PathBuf,
    /// `key.path=value` overrides.
    pub set: Vec<String>,
    /// Run directory to resume.
    pub resume: Option<PathBuf>,
}

/// An algorithm built from a config, with its environment factory.
struct Built {
    algo: Box<dyn Algorithm>,
    factory: EnvFactory,
}

fn build(config: &ExperimentConfig) -> Result<Built> {
    let entry = algorithms::find(&config.algo)
        .ok_or_else(|| UsageError(format!("unknown algorithm `{}`", config.algo)))?;
    let factory = mbrl_envs::make_factory(&config.env)?;
    let algo = (entry.build)(BuildContext {
        env_factory: factory.clone(),
        model_factory: Some(mbrl_models::ensemble_factory(config.model.clone())?),
        seed: config.seed,
        config: config.to_json(),
    })?;
    Ok(Built { algo, factory })
}

fn run_context(dir: &Path, config: &ExperimentConfig) -> RunContext {
    RunContext {
        dir: dir.to_path_buf(),
        run: config.run.clone(),
        seed: config.seed,
        config_hash: config.training_hash(),
    }
}

fn run_config_path(run: &Path) -> Result<PathBuf> {
    let path = run.join(CONFIG_FILE);
    if !path.is_file() {
        return Err(UsageError(format!(
            "{} is not a run directory (no {CONFIG_FILE} in it)",
            run.display()
        ))
        .into());
    }
    Ok(path)
}

/// `mbrl-cli train`.
pub fn train(args: TrainArgs) -> Result<()> {
    let (config, dir, resuming) = match &args.resume {
        Some(run) => {
            if args.config.is_some() || args.seed.is_some() {
                return Err(UsageError(
                    "--resume continues a run with its own config; drop --config and --seed".into(),
                )
                .into());
            }
            let config = config::load(Some(&run_config_path(run)?), &args.set)?;
            (config, run.clone(), true)
        }
        None => {
            let mut overrides = args.set.clone();
            if let Some(seed) = args.seed {
                overrides.push(format!("seed={seed}"));
            }
            let config = config::load(args.config.as_deref(), &overrides)?;
            let dir = run_dir::create(&args.out, &config)?;
            (config, dir, false)
        }
    };
    if resuming {
        // A resumed run may extend `[run]` (e.g. more iterations): keep the file current.
        std::fs::write(dir.join(CONFIG_FILE), config.to_toml())
            .with_context(|| format!("updating {}", dir.join(CONFIG_FILE).display()))?;
    }
    let Built { mut algo, factory } = build(&config)?;
    let mut eval_env: Box<dyn Env> = factory()?;
    let ctx = run_context(&dir, &config);
    let start = if resuming {
        restore_latest(algo.as_mut(), &ctx)?
    } else {
        StartPoint::default()
    };
    let mut reporter =
        ProgressReporter::new(RunLog::new(&dir), start.iteration, config.run.iterations);
    reporter.message(&format!(
        "run directory: {}\n{} on {} (seed {}), iterations {}..={}",
        dir.display(),
        config.algo,
        config.env.name,
        config.seed,
        start.iteration + 1,
        config.run.iterations
    ));
    let stop = Arc::new(AtomicBool::new(false));
    let handler_flag = stop.clone();
    // Failing to install the handler (e.g. a second run in one process) only loses Ctrl-C saving.
    let _ = ctrlc::set_handler(move || handler_flag.store(true, Ordering::SeqCst));
    let outcome = run_training(
        algo.as_mut(),
        eval_env.as_mut(),
        &ctx,
        start,
        &mut reporter,
        &stop,
    );
    reporter.finish();
    match outcome {
        Ok(RunOutcome::Completed) => {
            reporter.message(&format!(
                "finished: metrics and checkpoints in {}",
                dir.display()
            ));
            Ok(())
        }
        Ok(RunOutcome::Interrupted) => {
            reporter.message(&format!(
                "interrupted: checkpoint saved; continue with `mbrl-cli train --resume {}`",
                dir.display()
            ));
            Ok(())
        }
        Err(e) => {
            RunLog::new(&dir).line(&format!("error: {e}"));
            Err(e).with_context(|| format!("training run {}", dir.display()))
        }
    }
}

/// `mbrl-cli eval`: evaluates the newest checkpoint of a run.
pub fn eval(run: &Path, episodes: Option<usize>) -> Result<()> {
    let config = config::load(Some(&run_config_path(run)?), &[])?;
    let Built { mut algo, factory } = build(&config)?;
    let start = restore_latest(algo.as_mut(), &run_context(run, &config))?;
    let episodes = episodes.unwrap_or(config.run.eval_episodes);
    if episodes == 0 {
        return Err(UsageError("--episodes must be at least 1".into()).into());
    }
    let mut env = factory()?;
    let result = evaluate(
        env.as_mut(),
        algo.policy(),
        &eval_seeds(config.seed, episodes),
    )?;
    println!(
        "eval_return {:.3} +- {:.3} over {} episodes (mean length {:.1}), checkpoint of iteration {}",
        result.mean_return(),
        result.std_return(),
        episodes,
        result.mean_length(),
        start.iteration
    );
    Ok(())
}

/// `mbrl-cli envs`: every environment with its dimensions, horizon and task families.
pub fn envs() -> Result<()> {
    println!(
        "{:<26} {:>7} {:>7} {:>7}  {:<28} description",
        "name", "obs_dim", "act_dim", "horizon", "task families"
    );
    for info in mbrl_envs::registry::env_infos()? {
        let families = if info.task_families.is_empty() {
            "-".to_string()
        } else {
            info.task_families.join(", ")
        };
        println!(
            "{:<26} {:>7} {:>7} {:>7}  {:<28} {}",
            info.name, info.obs_dim, info.act_dim, info.horizon, families, info.description
        );
    }
    Ok(())
}

/// `mbrl-cli algos`: every registered algorithm.
pub fn algos() -> Result<()> {
    println!("{:<12} {:<40} reference", "name", "description");
    for entry in algorithms::registry() {
        println!(
            "{:<12} {:<40} {}",
            entry.name, entry.description, entry.reference
        );
    }
    Ok(())
}

/// `mbrl-cli validate`: parses and checks a config without running it.
pub fn validate(path: &Path, overrides: &[String]) -> Result<()> {
    let config = config::load(Some(path), overrides)?;
    build(&config)?;
    println!(
        "{}: OK ({} on {}, {} iterations, seed {})",
        path.display(),
        config.algo,
        config.env.name,
        config.run.iterations,
        config.seed
    );
    Ok(())
}
