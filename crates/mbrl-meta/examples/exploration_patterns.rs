//! Thesis Fig. 16 (Sec. 6.7.3) on `point-corners`: the pre-update exploration and the
//! post-update exploitation of meta-policies trained with different meta-gradient estimators.
//!
//! `train` meta-trains with a run config (`--config`, e.g. `configs/maml-trpo/point-corners.toml`;
//! `--estimator`, `--seed` and `--iterations` override its values), then, for each of the four
//! corner goals, runs one adaptation with the trainer's own sampler and inner step
//! (`MetaTrainer::adapt_to_task`, exactly what a training iteration does per task): the
//! `rollouts_per_task` pre-update trajectories of the meta-policy, the inner steps, and the
//! trajectories of the adapted policy. It writes to `--out`:
//! - `exploration_patterns_<learner>_seed<S>.csv`: `learner,seed,task,phase,trajectory,t,x,y`,
//!   the first `--keep` pre- and post-update trajectories of each task (positions `s_0..s_H`);
//! - `..._returns.csv`: `learner,seed,task,pre_return,post_return`, means over all trajectories;
//! - `..._training.csv`: per iteration the pre- and post-update returns of the training batch.
//!
//! `plot` draws merged trajectory CSVs as Fig. 16: one row per learner (in order of first
//! appearance), pre-update and post-update columns, trajectories coloured by task, the goal
//! regions (radius 0.5) as translucent discs in the task's colour.
//!
//! ```sh
//! cargo run --release -p mbrl-meta --example exploration_patterns -- train \
//!     --config configs/maml-trpo/point-corners.toml --estimator lvc --learner LVC-TRPO --seed 0
//! cargo run --release -p mbrl-meta --example exploration_patterns -- plot \
//!     --csv docs/results/exploration_patterns.csv --seed 0 --png docs/results/exploration_patterns.png
//! ```

/// candle allocates a buffer per op; glibc malloc page-faults on large ones (PERFORMANCE_NOTES).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use mbrl_core::algorithm::Algorithm;
use mbrl_core::data::Trajectory;
use mbrl_core::runner::RunConfig;
use mbrl_core::task::Task;
use mbrl_core::{Error, Result};
use mbrl_envs::point_corners::{CORNERS, GOAL_RADIUS};
use mbrl_envs::{make_factory, EnvConfig};
use mbrl_meta::estimators::Estimator;
use mbrl_meta::trainer::{
    MetaConfig, MetaSettings, MetaTrainer, Outer, MAML_TRPO_ENTRY, MAML_VPG_ENTRY, PROMP_ENTRY,
};
use mbrl_policy_opt::advantages::AdvantageConfig;
use mbrl_policy_opt::gaussian_mlp::PolicyConfig;
use mbrl_policy_opt::trpo::TrpoConfig;
use plotters::prelude::*;
use serde::Deserialize;

/// Errors of the different crates (environments, plotting).
type AnyResult<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// Command line.
#[derive(clap::Parser)]
enum Command {
    /// Meta-train one learner and record its trajectories on the four corners.
    Train(TrainArgs),
    /// Draw merged trajectory CSVs (one row per learner).
    Plot(PlotArgs),
}

/// `train` settings.
#[derive(clap::Args)]
struct TrainArgs {
    /// Run config (the tables `algo`, `seed`, `[env]`, `[run]`, `[policy]`, `[advantage]`,
    /// `[trpo]`, `[meta]` of mbrl-cli's format).
    #[arg(long)]
    config: PathBuf,
    /// Meta-gradient estimator (`lvc`, `dice`, `maml`, `e-maml`); overrides `meta.estimator`.
    #[arg(long)]
    estimator: Option<String>,
    /// Run seed; overrides `seed`.
    #[arg(long)]
    seed: Option<u64>,
    /// Training iterations; overrides `run.iterations`.
    #[arg(long)]
    iterations: Option<u64>,
    /// Name of the learner in the outputs (no commas); default `<algo>-<estimator>`.
    #[arg(long)]
    learner: Option<String>,
    /// Trajectories per task and phase written to the trajectory CSV.
    #[arg(long, default_value_t = 5)]
    keep: usize,
    /// Output directory.
    #[arg(long, default_value = "docs/results")]
    out: PathBuf,
}

/// `plot` settings.
#[derive(clap::Args)]
struct PlotArgs {
    /// Trajectory CSV(s) written by `train` (or their concatenation).
    #[arg(long, required = true)]
    csv: Vec<PathBuf>,
    /// Which seed's trajectories to draw.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output PNG.
    #[arg(long)]
    png: PathBuf,
}

/// The parts of a run config the meta-RL trainer reads (mbrl-cli's schema, strict).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RunFile {
    algo: String,
    #[serde(default)]
    seed: u64,
    #[serde(default)]
    env: EnvConfig,
    #[serde(default)]
    run: RunConfig,
    #[serde(default)]
    policy: PolicyConfig,
    #[serde(default)]
    advantage: AdvantageConfig,
    #[serde(default)]
    trpo: TrpoConfig,
    #[serde(default)]
    meta: MetaConfig,
}

impl RunFile {
    /// Reads `args.config` and applies the command-line overrides.
    fn load(args: &TrainArgs) -> Result<Self> {
        let path = args.config.display();
        let text = std::fs::read_to_string(&args.config)
            .map_err(|e| Error::InvalidArgument(format!("reading {path}: {e}")))?;
        let mut file: RunFile =
            toml::from_str(&text).map_err(|e| Error::InvalidArgument(format!("{path}: {e}")))?;
        if let Some(name) = &args.estimator {
            let estimator: Estimator = serde_json::from_value(serde_json::json!(name))
                .map_err(|e| Error::InvalidArgument(format!("--estimator {name}: {e}")))?;
            file.meta.estimator = Some(estimator);
        }
        file.seed = args.seed.unwrap_or(file.seed);
        file.run.iterations = args.iterations.unwrap_or(file.run.iterations);
        Ok(file)
    }

    fn outer(&self) -> Result<Outer> {
        [
            (PROMP_ENTRY.name, Outer::ProMp),
            (MAML_TRPO_ENTRY.name, Outer::Trpo),
            (MAML_VPG_ENTRY.name, Outer::Vpg),
        ]
        .into_iter()
        .find(|(name, _)| *name == self.algo)
        .map(|(_, outer)| outer)
        .ok_or_else(|| {
            Error::InvalidArgument(format!(
                "algo `{}` is not a model-free meta-RL trainer (promp, maml-trpo, maml-vpg)",
                self.algo
            ))
        })
    }
}

/// One task's recorded adaptation.
struct TaskRecord {
    label: String,
    pre: Vec<Trajectory>,
    post: Vec<Trajectory>,
}

fn mean_return(trajectories: &[Trajectory]) -> f64 {
    trajectories.iter().map(|t| t.total_return()).sum::<f64>() / trajectories.len().max(1) as f64
}

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text)
        .map_err(|e| Error::InvalidArgument(format!("writing {}: {e}", path.display())))
}

/// The trajectory CSV rows of one run: positions `s_0 .. s_H` of the first `keep` trajectories
/// per task and phase.
fn trajectory_csv(learner: &str, seed: u64, records: &[TaskRecord], keep: usize) -> String {
    let mut text = String::from("learner,seed,task,phase,trajectory,t,x,y\n");
    for (task, record) in records.iter().enumerate() {
        for (phase, batch) in [("pre", &record.pre), ("post", &record.post)] {
            for (i, traj) in batch.iter().take(keep).enumerate() {
                for t in 0..=traj.len() {
                    let s = traj.obs(t);
                    let _ = writeln!(
                        text,
                        "{learner},{seed},{task},{phase},{i},{t},{:.4},{:.4}",
                        s[0], s[1]
                    );
                }
            }
        }
    }
    text
}

fn train(args: &TrainArgs) -> AnyResult<()> {
    let file = RunFile::load(args)?;
    let outer = file.outer()?;
    let factory = make_factory(&file.env)?;
    let settings = MetaSettings {
        meta: file.meta.clone(),
        policy: file.policy.clone(),
        advantage: file.advantage.clone(),
        trpo: file.trpo.clone(),
    };
    let mut trainer = MetaTrainer::new(&factory, file.seed, outer, settings)?;
    let learner = args
        .learner
        .clone()
        .unwrap_or_else(|| format!("{}-{}", file.algo, trainer.estimator().name()));
    if learner.contains(',') {
        return Err("--learner must not contain commas".into());
    }
    let start = std::time::Instant::now();
    let mut training =
        String::from("learner,seed,iteration,pre_update_return,post_update_return,kl,seconds\n");
    for iteration in 1..=file.run.iterations {
        let stats = trainer.train_iteration(iteration)?;
        let (pre, post, kl) = (
            stats.metrics["pre_update_return"],
            stats.metrics["post_update_return"],
            stats.metrics["kl"],
        );
        let seconds = start.elapsed().as_secs_f64();
        eprintln!(
            "{learner} seed {} iteration {iteration}: pre {pre:.2} post {post:.2} kl {kl:.4} \
             ({seconds:.0} s)",
            file.seed
        );
        let _ = writeln!(
            training,
            "{learner},{},{iteration},{pre:.4},{post:.4},{kl:.6},{seconds:.1}",
            file.seed
        );
    }
    let mut records = Vec::with_capacity(CORNERS.len());
    for corner in CORNERS {
        // No comma: the label is a CSV field.
        let label = format!("({:+};{:+})", corner[0], corner[1]);
        let task = Task::new(
            format!("corner={label}"),
            vec![corner[0] as f64, corner[1] as f64],
        );
        let mut batches = trainer.adapt_to_task(&task)?.trajectories.into_iter();
        let pre = batches.next().ok_or("no pre-update batch")?;
        let post = batches.next_back().ok_or("no post-update batch")?;
        records.push(TaskRecord { label, pre, post });
    }
    std::fs::create_dir_all(&args.out)?;
    let stem = args
        .out
        .join(format!("exploration_patterns_{learner}_seed{}", file.seed));
    let path = |suffix: &str| PathBuf::from(format!("{}{suffix}", stem.display()));
    write(
        &path(".csv"),
        &trajectory_csv(&learner, file.seed, &records, args.keep),
    )?;
    let mut returns = String::from("learner,seed,task,pre_return,post_return\n");
    for record in &records {
        let (pre, post) = (mean_return(&record.pre), mean_return(&record.post));
        eprintln!(
            "{learner} corner {}: pre {pre:.2} post {post:.2}",
            record.label
        );
        let _ = writeln!(
            returns,
            "{learner},{},{},{pre:.4},{post:.4}",
            file.seed, record.label
        );
    }
    write(&path("_returns.csv"), &returns)?;
    write(&path("_training.csv"), &training)?;
    eprintln!(
        "{learner} seed {}: done in {:.1} s",
        file.seed,
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

/// One trajectory of a trajectory CSV.
struct Drawn {
    learner: String,
    task: usize,
    post: bool,
    points: Vec<(f64, f64)>,
}

/// The trajectories of `seed` in the CSVs, in file order.
fn read_trajectories(paths: &[PathBuf], seed: u64) -> AnyResult<Vec<Drawn>> {
    let mut drawn: Vec<Drawn> = Vec::new();
    for path in paths {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("reading {}: {e}", path.display()))?;
        for (n, line) in text.lines().enumerate() {
            let f: Vec<&str> = line.split(',').collect();
            if f.len() != 8 || f[0] == "learner" {
                continue;
            }
            let bad = || format!("{}:{}: malformed row `{line}`", path.display(), n + 1);
            if f[1].parse::<u64>().map_err(|_| bad())? != seed {
                continue;
            }
            let task: usize = f[2].parse().map_err(|_| bad())?;
            let post = f[3] == "post";
            let t: usize = f[5].parse().map_err(|_| bad())?;
            let point = (
                f[6].parse::<f64>().map_err(|_| bad())?,
                f[7].parse::<f64>().map_err(|_| bad())?,
            );
            if t == 0 {
                drawn.push(Drawn {
                    learner: f[0].to_string(),
                    task,
                    post,
                    points: Vec::new(),
                });
            }
            let last = drawn.last_mut().ok_or_else(bad)?;
            last.points.push(point);
        }
    }
    Ok(drawn)
}

/// Task colours (tab10), in the order of `CORNERS`.
const TASK_COLORS: [RGBColor; 4] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
];

fn plot(args: &PlotArgs) -> AnyResult<()> {
    let drawn = read_trajectories(&args.csv, args.seed)?;
    let mut learners: Vec<&str> = Vec::new();
    for d in &drawn {
        if !learners.contains(&d.learner.as_str()) {
            learners.push(&d.learner);
        }
    }
    if learners.is_empty() {
        return Err(format!("no trajectories of seed {} in the CSVs", args.seed).into());
    }
    // A square view around all trajectories and goal regions.
    let extent = drawn
        .iter()
        .flat_map(|d| d.points.iter())
        .fold(2.0 + GOAL_RADIUS as f64, |m, p| {
            m.max(p.0.abs()).max(p.1.abs())
        })
        + 0.3;
    mbrl_core::plot::register_font()?;
    let cell = 420u32;
    let root = BitMapBackend::new(&args.png, (2 * cell, cell * learners.len() as u32 + 40))
        .into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(
        &format!(
            "point-corners, seed {}: pre-update (left) and post-update after the inner steps \
             (right); colour = task",
            args.seed
        ),
        ("sans-serif", 16),
    )?;
    let cells = root.split_evenly((learners.len(), 2));
    for (row, learner) in learners.iter().enumerate() {
        for (col, post) in [false, true].into_iter().enumerate() {
            let title = format!(
                "{learner}: {}",
                if post { "post-update" } else { "pre-update" }
            );
            let mut chart = ChartBuilder::on(&cells[2 * row + col])
                .caption(title, ("sans-serif", 15))
                .margin(8)
                .x_label_area_size(25)
                .y_label_area_size(30)
                .build_cartesian_2d(-extent..extent, -extent..extent)?;
            chart
                .configure_mesh()
                .light_line_style(WHITE)
                .x_label_formatter(&|v| format!("{v:.0}"))
                .y_label_formatter(&|v| format!("{v:.0}"))
                .label_style(("sans-serif", 11))
                .draw()?;
            for (task, corner) in CORNERS.iter().enumerate() {
                let r = GOAL_RADIUS as f64;
                let disc: Vec<(f64, f64)> = (0..48)
                    .map(|i| {
                        let a = i as f64 / 48.0 * std::f64::consts::TAU;
                        (
                            corner[0] as f64 + r * a.cos(),
                            corner[1] as f64 + r * a.sin(),
                        )
                    })
                    .collect();
                chart.draw_series(std::iter::once(Polygon::new(
                    disc,
                    TASK_COLORS[task].mix(0.25).filled(),
                )))?;
            }
            let lines = drawn
                .iter()
                .filter(|d| d.learner == *learner && d.post == post);
            chart.draw_series(lines.map(|d| {
                PathElement::new(
                    d.points.clone(),
                    TASK_COLORS[d.task % TASK_COLORS.len()]
                        .mix(0.7)
                        .stroke_width(1),
                )
            }))?;
        }
    }
    root.present()?;
    Ok(())
}

fn main() -> AnyResult<()> {
    match <Command as clap::Parser>::parse() {
        Command::Train(args) => train(&args),
        Command::Plot(args) => plot(&args),
    }
}
