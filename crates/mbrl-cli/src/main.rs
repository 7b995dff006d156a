//! `mbrl-cli`: train, evaluate and inspect model-based RL runs.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use mbrl_cli::commands::{self, TrainArgs};

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
    /// Evaluate the newest checkpoint of a run (deterministic actions).
    Eval {
        /// Run directory.
        #[arg(long)]
        run: PathBuf,
        /// Number of episodes (default: the run's eval_episodes).
        #[arg(long)]
        episodes: Option<usize>,
    },
    /// Plot learning curves of runs (mean and std over seeds) to a PNG and a CSV.
    Plot {
        /// Run directories, folders of run directories, or LABEL=DIR.
        #[arg(required = true)]
        runs: Vec<String>,
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
    /// List environments: dimensions, horizon, task families.
    Envs,
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
        Command::Eval { run, episodes } => commands::eval(&run, episodes),
        Command::Plot {
            runs,
            out,
            x,
            y,
            title,
            threshold,
            log_x,
        } => mbrl_cli::plot::plot(&runs, &out, &x, &y, title.as_deref(), threshold, log_x),
        Command::Envs => commands::envs(),
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
