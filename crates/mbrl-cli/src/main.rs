//! `mbrl-cli`: train, evaluate and inspect model-based RL runs.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use mbrl_cli::commands::{self, EvalArgs, RenderArgs, TrainArgs};
use mbrl_cli::planning::{PlannerArgs, PlannerChoice};
use mbrl_cli::render::ImageFormat;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Model-based reinforcement learning that overcomes model bias.
#[derive(Parser)]
#[command(name = "mbrl-cli", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train an algorithm (the embedded default experiment without --config).
    Train {
        /// TOML config file.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Run seed (overrides the config's `seed`).
        #[arg(long)]
        seed: Option<u64>,
        /// Parent directory of run directories.
        #[arg(long, default_value = "runs")]
        out: PathBuf,
        /// Override a config value, e.g. --set run.iterations=5 (repeatable).
        #[arg(long = "set", value_name = "KEY.PATH=VALUE")]
        set: Vec<String>,
        /// Continue the run in this directory from its newest checkpoint.
        #[arg(long, value_name = "RUN_DIR")]
        resume: Option<PathBuf>,
    },
    /// Run one worker of an asynchronous run whose servers are in Redis (`async.backend =
    /// "redis"`; start `mbrl-cli train` with the same config to coordinate). It stops when the
    /// run ends.
    Worker {
        /// The worker's job: data, model or policy.
        #[arg(long)]
        role: String,
        /// TOML config file (the coordinator's).
        #[arg(long)]
        config: PathBuf,
        /// A data worker's number (0, 1, ...: each robot its own).
        #[arg(long, default_value_t = 0)]
        index: u32,
        /// Override a config value (repeatable).
        #[arg(long = "set", value_name = "KEY.PATH=VALUE")]
        set: Vec<String>,
    },
    /// Evaluate the newest checkpoint of a run (deterministic actions, or MPC with --planner).
    Eval {
        /// Run directory.
        #[arg(long)]
        run: PathBuf,
        /// Number of episodes (default: the run's eval_episodes).
        #[arg(long)]
        episodes: Option<usize>,
        /// Act by model-predictive control in the run's learned model, started from its policy
        /// (and ended with its Q-function where it has one), instead of the policy alone.
        #[arg(long, value_enum)]
        planner: Option<PlannerChoice>,
        /// Planned steps (default 5).
        #[arg(long, requires = "planner")]
        horizon: Option<usize>,
        /// Candidate sequences per planner iteration (default 256).
        #[arg(long, requires = "planner")]
        candidates: Option<usize>,
        /// CEM / MPPI iterations per plan (default 5).
        #[arg(long, requires = "planner")]
        iterations: Option<usize>,
        /// Start plans from the centre of the action box, not the policy's proposal.
        #[arg(long, requires = "planner")]
        no_proposal: bool,
        /// Leave out the learned terminal value after the last planned step.
        #[arg(long, requires = "planner")]
        no_terminal_value: bool,
        /// Task family to test in (default: the run's `env.task_family`).
        #[arg(long)]
        task_family: Option<String>,
        /// Start every episode in this task of the family (a held-out test task's label, as
        /// listed when the label is unknown).
        #[arg(long)]
        task: Option<String>,
        /// Switch to --switch-task at this step of every episode (counted from 0).
        #[arg(long, requires = "switch_task")]
        switch_step: Option<usize>,
        /// The task switched to at --switch-step.
        #[arg(long, requires = "switch_step")]
        switch_task: Option<String>,
    },
    /// Draw episodes of a robot as an animated GIF or a PNG strip: a run's newest checkpoint
    /// (--run) or random actions (--env).
    #[command(group(clap::ArgGroup::new("source").required(true).args(["run", "env"])))]
    Render {
        /// Run directory: its newest checkpoint acts in the run's environment.
        #[arg(long, conflicts_with_all = ["env", "task_family", "seed", "steps"])]
        run: Option<PathBuf>,
        /// Robot to drive with uniformly random actions (`mbrl-cli envs` lists them).
        #[arg(long, conflicts_with_all = ["episodes", "deterministic"])]
        env: Option<String>,
        /// Task family of --env.
        #[arg(long)]
        task_family: Option<String>,
        /// Reset and action seed of --env.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Steps of the --env episode (default: the robot's horizon).
        #[arg(long)]
        steps: Option<usize>,
        /// Episodes of the --run policy, one after the other (the reset seeds of `eval`).
        #[arg(long, default_value_t = 1)]
        episodes: usize,
        /// Use the policy's mean action (as `eval`) instead of sampling.
        #[arg(long)]
        deterministic: bool,
        /// Output file (default: <run>/render.gif, or <env>.gif in the current directory).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Draw every S-th frame (default: every frame of a GIF, about 16 frames in a PNG).
        #[arg(long, value_name = "S")]
        stride: Option<usize>,
        /// Image format (default: from --out's extension, else gif).
        #[arg(long, value_enum)]
        format: Option<ImageFormat>,
    },
    /// Plot learning curves of runs (mean and sample std over seeds) to a PNG and a CSV.
    Plot {
        /// Run directories, folders of run directories, or LABEL=DIR.
        #[arg(required_unless_present = "from_csv", conflicts_with = "from_csv")]
        runs: Vec<String>,
        /// Redraw from a CSV this command wrote (group,x,mean,std,seeds) instead of runs.
        #[arg(long, value_name = "CSV")]
        from_csv: Option<PathBuf>,
        /// Output PNG (the CSV goes beside it).
        #[arg(long, default_value = "learning_curves.png")]
        out: PathBuf,
        /// Metrics column on the x axis.
        #[arg(long, default_value = "env_steps")]
        x: String,
        /// Metrics column on the y axis.
        #[arg(long, default_value = "eval_return")]
        y: String,
        /// Plot title.
        #[arg(long)]
        title: Option<String>,
        /// Also print, per group, the first x at which the mean reaches this value.
        #[arg(long, allow_hyphen_values = true)]
        threshold: Option<f64>,
        /// Draw the x axis as log10 (sample-efficiency comparisons over decades).
        #[arg(long)]
        log_x: bool,
    },
    /// List environments: dimensions, horizon, task families; with --env and --task-family, the
    /// family's held-out test tasks instead (one label per line, for `eval --task`).
    Envs {
        /// Environment whose held-out test tasks to list.
        #[arg(long, requires = "task_family")]
        env: Option<String>,
        /// Its task family.
        #[arg(long, requires = "env")]
        task_family: Option<String>,
    },
    /// List algorithms.
    Algos,
    /// Check a config file without running it.
    Validate {
        /// TOML config file.
        #[arg(long)]
        config: PathBuf,
        /// Override a config value (repeatable).
        #[arg(long = "set", value_name = "KEY.PATH=VALUE")]
        set: Vec<String>,
    },
}

fn main() -> ExitCode {
    mbrl_cli::allocator::keep_freed_memory();
    mbrl_cli::threads::configure();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Train {
            config,
            seed,
            out,
            set,
            resume,
        } => commands::train(TrainArgs {
            config,
            seed,
            out,
            set,
            resume,
        }),
        Command::Eval {
            run,
            episodes,
            planner,
            horizon,
            candidates,
            iterations,
            no_proposal,
            no_terminal_value,
            task_family,
            task,
            switch_step,
            switch_task,
        } => commands::eval(EvalArgs {
            run,
            episodes,
            planner,
            tasks: commands::EvalTasks {
                task_family,
                task,
                switch: switch_step.zip(switch_task),
            },
            planner_args: PlannerArgs {
                horizon,
                candidates,
                iterations,
                no_proposal,
                no_terminal_value,
            },
        }),
        Command::Render {
            run,
            env,
            task_family,
            seed,
            steps,
            episodes,
            deterministic,
            out,
            stride,
            format,
        } => commands::render(RenderArgs {
            run,
            env,
            task_family,
            seed,
            steps,
            episodes,
            deterministic,
            out,
            stride,
            format,
        }),
        Command::Plot {
            runs,
            from_csv,
            out,
            x,
            y,
            title,
            threshold,
            log_x,
        } => {
            let source = match &from_csv {
                Some(csv) => mbrl_cli::plot::Source::Csv(csv),
                None => mbrl_cli::plot::Source::Runs(&runs),
            };
            mbrl_cli::plot::plot(source, &out, &x, &y, title.as_deref(), threshold, log_x)
        }
        Command::Worker {
            role,
            config,
            index,
            set,
        } => commands::worker(&role, &config, index, &set),
        Command::Envs { env, task_family } => match (env, task_family) {
            (Some(env), Some(family)) => commands::held_out_tasks(&env, &family),
            _ => commands::envs(),
        },
        Command::Algos => commands::algos(),
        Command::Validate { config, set } => commands::validate(&config, &set),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(if mbrl_cli::is_usage_error(&error) {
                2
            } else {
                1
            })
        }
    }
}
