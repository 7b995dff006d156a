//! What each subcommand does: `train`, `eval`, `render`, `envs`, `algos`, `validate`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{Context, Result};
use mbrl_core::algorithm::{Algorithm, BuildContext};
use mbrl_core::env::{Env, EnvFactory};
use mbrl_core::rollout::{eval_seeds, evaluate_in_tasks, TaskSwitch};
use mbrl_core::runner::{restore_latest, run_training, RunContext, RunOutcome, StartPoint};
use mbrl_core::task::Task;

use crate::config::{self, ExperimentConfig};
use crate::planning::{mpc_policy, PlannerArgs, PlannerChoice};
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

/// `mbrl-cli worker`: one worker of an asynchronous run on the Redis backend.
pub fn worker(role: &str, config_path: &Path, index: u32, set: &[String]) -> Result<()> {
    let role: mbrl_async::remote::Role = role.parse().map_err(|e| UsageError(format!("{e}")))?;
    let config = config::load(Some(config_path), set)?;
    algorithms::find(&config.algo)
        .ok_or_else(|| UsageError(format!("unknown algorithm `{}`", config.algo)))?;
    let ctx = BuildContext {
        env_factory: mbrl_envs::make_factory(&config.env)?,
        model_factory: Some(mbrl_models::ensemble_factory(config.model.clone())?),
        seed: config.seed,
        config: config.to_json(),
    };
    eprintln!(
        "{role} worker{} of {} (run `{}` at {})",
        if role == mbrl_async::remote::Role::Data {
            format!(" {index}")
        } else {
            String::new()
        },
        config.algo,
        config.asynchronous.run_id,
        mbrl_async::redis_backend::masked(&config.asynchronous.redis_url)
    );
    mbrl_async::remote::run_worker(ctx, &config.algo, role, index)?;
    eprintln!("{role} worker: the run ended");
    Ok(())
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
        "run directory: {}\n{} on {} (seed {}), iterations {}..={}\nmachine: {}",
        dir.display(),
        config.algo,
        config.env.name,
        config.seed,
        start.iteration + 1,
        config.run.iterations,
        mbrl_core::kernels::cpu::summary()
    ));
    let stop = Arc::new(AtomicBool::new(false));
    let handler_flag = stop.clone();
    // Failing to install the handler (e.g. a second run in one process) only loses saving on
    // Ctrl-C / SIGTERM.
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
/// Arguments of `eval`.
pub struct EvalArgs {
    /// Run directory whose newest checkpoint is evaluated.
    pub run: PathBuf,
    /// Episodes (default: the run's `eval_episodes`).
    pub episodes: Option<usize>,
    /// Act by model-predictive control with this planner instead of the policy alone.
    pub planner: Option<PlannerChoice>,
    /// The planner's settings.
    pub planner_args: PlannerArgs,
    /// The tasks to test in.
    pub tasks: EvalTasks,
}

/// Which tasks `eval` tests in (thesis Ch. 9: held-out tasks and mid-episode switches).
#[derive(Debug, Clone, Default)]
pub struct EvalTasks {
    /// Task family of the test environment (default: the run's).
    pub task_family: Option<String>,
    /// Label of the task every episode starts in (default: the environment's own).
    pub task: Option<String>,
    /// `(step, label)`: switch to that task at that step.
    pub switch: Option<(usize, String)>,
}

/// The task of `env`'s family with `label`: one of its held-out test tasks, or its current
/// (default) task; an unknown label is a usage error listing the valid ones.
fn find_task(env: &mut dyn mbrl_core::env::Env, label: &str) -> Result<Task> {
    let name = env.spec().name;
    let family = env.task_distribution().ok_or_else(|| {
        UsageError(format!(
            "`{name}` has no task family active: give --task-family (mbrl-cli envs lists them)"
        ))
    })?;
    let mut tasks = family.test_tasks();
    tasks.push(family.current_task());
    let labels: Vec<String> = tasks.iter().map(|t| format!("`{}`", t.label)).collect();
    tasks.into_iter().find(|t| t.label == label).ok_or_else(|| {
        UsageError(format!(
            "unknown task `{label}` of family `{}`; valid tasks: {}",
            family.family(),
            labels.join(", ")
        ))
        .into()
    })
}

/// `mbrl-cli eval`: the newest checkpoint's deterministic policy, or MPC on top of it
/// (`--planner`), over `episodes` episodes with the run's evaluation seeds.
pub fn eval(args: EvalArgs) -> Result<()> {
    let run = args.run.as_path();
    let config = config::load(Some(&run_config_path(run)?), &[])?;
    let Built { mut algo, factory } = build(&config)?;
    let restored = restore_latest(algo.as_mut(), &run_context(run, &config))?;
    let episodes = args.episodes.unwrap_or(config.run.eval_episodes);
    if episodes == 0 {
        return Err(UsageError("--episodes must be at least 1".into()).into());
    }
    let mut env = match &args.tasks.task_family {
        None => factory()?,
        Some(family) => {
            let env_config = mbrl_envs::EnvConfig {
                task_family: Some(family.clone()),
                ..config.env.clone()
            };
            mbrl_envs::make_factory(&env_config).map_err(|e| UsageError(e.to_string()))?()?
        }
    };
    let seeds = eval_seeds(config.seed, episodes);
    let start_task = match &args.tasks.task {
        Some(label) => Some(find_task(env.as_mut(), label)?),
        None => None,
    };
    let switch_task = match &args.tasks.switch {
        Some((step, label)) => Some((*step, find_task(env.as_mut(), label)?)),
        None => None,
    };
    let switch = switch_task.as_ref().map(|(at_step, task)| TaskSwitch {
        at_step: *at_step,
        task,
    });
    let start = start_task.as_ref();
    let (result, actor) = match args.planner {
        None => (
            evaluate_in_tasks(env.as_mut(), algo.policy(), &seeds, start, switch)?,
            "policy".to_string(),
        ),
        Some(choice) => {
            let mpc = mpc_policy(
                algo.as_ref(),
                &config.algo,
                env.as_ref(),
                choice,
                &args.planner_args,
            )?;
            let planner = args.planner_args.config(choice);
            // Each episode starts from a fresh planner state (begin_episode).
            let result = evaluate_in_tasks(env.as_mut(), &mpc, &seeds, start, switch)?;
            let calls = mpc.model_calls();
            (
                result,
                format!(
                    "MPC ({:?}, horizon {}, {} candidates, {} iterations; {} model rows)",
                    planner.kind,
                    planner.horizon,
                    planner.candidates,
                    planner.iterations,
                    calls.rows
                ),
            )
        }
    };
    let mut actor = actor;
    if let Some(task) = start {
        actor.push_str(&format!(", task `{}`", task.label));
    }
    if let Some((step, task)) = &switch_task {
        actor.push_str(&format!(", switched to `{}` at step {step}", task.label));
    }
    println!(
        "eval_return {:.3} +- {:.3} over {} episodes (mean length {:.1}), {actor}, checkpoint of iteration {}",
        result.mean_return(),
        result.std_return(),
        episodes,
        result.mean_length(),
        restored.iteration
    );
    Ok(())
}

/// Arguments of `render`: a run (`--run`) or an env with random actions (`--env`).
pub struct RenderArgs {
    /// Run directory whose newest checkpoint acts.
    pub run: Option<PathBuf>,
    /// Robot to drive with random actions.
    pub env: Option<String>,
    /// Task family of `env`.
    pub task_family: Option<String>,
    /// Reset seed of the random-action episode (also seeds the actions).
    pub seed: u64,
    /// Steps of the random-action episode (default: the robot's horizon).
    pub steps: Option<usize>,
    /// Episodes of the policy, one after the other (reset seeds of `eval`).
    pub episodes: usize,
    /// The policy's mean action instead of a sample.
    pub deterministic: bool,
    /// Output file (default `<run>/render.<format>`, or `<env>.<format>`).
    pub out: Option<PathBuf>,
    /// Draw every `stride`-th frame.
    pub stride: Option<usize>,
    /// Image format (default: from the output's extension, else GIF).
    pub format: Option<crate::render::ImageFormat>,
}

/// `mbrl-cli render`: draws episodes of a run's newest checkpoint, or of random actions, from
/// the simulation state of the same environment `eval` uses.
pub fn render(args: RenderArgs) -> Result<()> {
    use crate::render::{record_episode, resolve_format, ImageFormat, Output};
    let extension = |f: Option<ImageFormat>| match f {
        Some(ImageFormat::Png) => "png",
        _ => "gif",
    };
    let (env_config, default_out) = match (&args.run, &args.env) {
        (Some(run), None) => (
            config::load(Some(&run_config_path(run)?), &[])?.env,
            run.join(format!("render.{}", extension(args.format))),
        ),
        (None, Some(name)) => (
            mbrl_envs::EnvConfig {
                name: name.clone(),
                max_episode_steps: args.steps,
                task_family: args.task_family.clone(),
                ..mbrl_envs::EnvConfig::default()
            },
            PathBuf::from(format!("{name}.{}", extension(args.format))),
        ),
        _ => return Err(UsageError("give exactly one of --run DIR or --env NAME".into()).into()),
    };
    let names = mbrl_envs::robots::ROBOT_NAMES;
    if !names.contains(&env_config.name.as_str()) {
        return Err(UsageError(format!(
            "env `{}` cannot be rendered (it has no simulation to draw); renderable envs: {}",
            env_config.name,
            names.join(", ")
        ))
        .into());
    }
    if args.steps == Some(0) || args.episodes == 0 {
        return Err(UsageError("--steps and --episodes must be at least 1".into()).into());
    }
    let path = args.out.clone().unwrap_or(default_out);
    let output = Output {
        format: resolve_format(&path, args.format)?,
        path,
        stride: args.stride,
    };
    let (mut robot, horizon) =
        mbrl_envs::robots::make_robot_with(&env_config).map_err(|e| UsageError(e.to_string()))?;
    let mut frames = Vec::new();
    let mut returns = Vec::new();
    match &args.run {
        Some(run) => {
            let config = config::load(Some(&run_config_path(run)?), &[])?;
            let Built { mut algo, .. } = build(&config)?;
            let restored = restore_latest(algo.as_mut(), &run_context(run, &config))?;
            let policy = algo.policy();
            let mut rng = mbrl_core::seeding::stream_rng(
                config.seed,
                mbrl_core::seeding::Stream::Custom(RENDER_STREAM),
            );
            for seed in eval_seeds(config.seed, args.episodes) {
                let (states, total) = record_episode(robot.as_mut(), seed, horizon, |obs| {
                    Ok(policy
                        .act(&obs.unsqueeze(0)?, args.deterministic, &mut rng)?
                        .squeeze(0)?)
                })?;
                frames.extend(states);
                returns.push(total);
            }
            println!(
                "policy of iteration {} on {}",
                restored.iteration, env_config.name
            );
        }
        None => {
            let mut rng = mbrl_core::seeding::stream_rng(
                args.seed,
                mbrl_core::seeding::Stream::Custom(RENDER_STREAM),
            );
            let actions = robot.action_space().clone();
            let (states, total) = record_episode(robot.as_mut(), args.seed, horizon, |_| {
                Ok(mbrl_core::env::vector(&actions.sample(&mut rng))?)
            })?;
            frames.extend(states);
            returns.push(total);
        }
    }
    crate::render::write(&frames, robot.as_ref(), &output)?;
    let returns: Vec<String> = returns.iter().map(|r| format!("{r:.2}")).collect();
    println!(
        "wrote {} ({} states, episode returns {})",
        output.path.display(),
        frames.len(),
        returns.join(", ")
    );
    Ok(())
}

/// Custom seeding stream of `render`'s action sampling (disjoint from training's streams).
const RENDER_STREAM: u32 = 7;

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

/// `mbrl-cli envs --env NAME --task-family F`: the family's held-out test tasks, one label per
/// line (what `eval --task` and `--switch-task` take).
pub fn held_out_tasks(name: &str, family: &str) -> Result<()> {
    let config = mbrl_envs::EnvConfig {
        name: name.to_string(),
        task_family: Some(family.to_string()),
        ..mbrl_envs::EnvConfig::default()
    };
    let mut env = mbrl_envs::make_factory(&config).map_err(|e| UsageError(e.to_string()))?()?;
    let tasks = env
        .task_distribution()
        .map(|d| d.test_tasks())
        .unwrap_or_default();
    if tasks.is_empty() {
        return Err(UsageError(format!(
            "family `{family}` of `{name}` holds no tasks out: its test tasks come from the \
             training distribution"
        ))
        .into());
    }
    for task in tasks {
        println!("{}", task.label);
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
