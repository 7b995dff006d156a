//! Thesis Fig. 15 (Sec. 6.7.2) on `point1d-goal`: the relative standard deviation of the
//! meta-gradient of LVC, DiCE, MAML and E-MAML along a meta-training run.
//!
//! A Gaussian MLP policy is meta-trained with MAML-VPG and the LVC estimator. Every
//! `--every` iterations the policy is held fixed, `--batches` independent meta-batches are
//! drawn, and each estimator's meta-gradient is computed on each batch (paired samples: the
//! inner step is the same for all estimators, `mbrl_meta::gradient_variance`). Per estimator
//! the CSV holds the mean standard deviation over parameters, the relative standard deviation
//! of the reference implementation (mean over parameters of `std / |mean|`) and the total
//! spread relative to the mean gradient's norm; the PNG draws them against environment steps,
//! with the run's pre- and post-update returns below.
//!
//! ```sh
//! cargo run --release -p mbrl-meta --example estimator_variance -- --out docs/results --seed 0
//! ```

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use mbrl_core::policy::GaussianPolicy;
use mbrl_core::seeding::{stream_rng, Stream};
use mbrl_core::{Error, Result};
use mbrl_envs::{make_factory, EnvConfig};
use mbrl_meta::adaptation::InnerStepSize;
use mbrl_meta::estimators::Estimator;
use mbrl_meta::gradient_variance::{
    draw_meta_batch, finite_horizon_advantages, meta_gradient, GradientSpread,
};
use mbrl_meta::higher_order;
use mbrl_meta::maml_vpg::MamlVpg;
use mbrl_meta::task_sampler::TaskSampler;
use mbrl_policy_opt::gaussian_mlp::{GaussianMlpPolicy, PolicyConfig};
use plotters::prelude::*;

const ESTIMATORS: [Estimator; 4] = [
    Estimator::Lvc,
    Estimator::Dice,
    Estimator::Maml,
    Estimator::EMaml,
];

/// Command-line settings.
#[derive(clap::Parser)]
struct Settings {
    /// Output directory.
    #[arg(long, default_value = "docs/results")]
    out: PathBuf,
    /// Run seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Training iterations.
    #[arg(long, default_value_t = 40)]
    iterations: usize,
    /// Iterations between measurements.
    #[arg(long, default_value_t = 5)]
    every: usize,
    /// Independent meta-batches per measurement.
    #[arg(long, default_value_t = 16)]
    batches: usize,
    /// Tasks per meta-batch.
    #[arg(long, default_value_t = 20)]
    tasks: usize,
    /// Rollouts per task.
    #[arg(long, default_value_t = 20)]
    rollouts: usize,
    /// Inner step size.
    #[arg(long, default_value_t = 0.01)]
    inner_step: f64,
    /// Outer learning rate.
    #[arg(long, default_value_t = 0.01)]
    learning_rate: f64,
    /// Width of the policy's two hidden layers.
    #[arg(long, default_value_t = 32)]
    hidden: usize,
}

impl Settings {
    /// The command line, checked.
    fn from_args() -> Result<Self> {
        let s = <Settings as clap::Parser>::parse();
        if s.every == 0 || s.batches < 2 {
            return Err(Error::InvalidArgument(
                "--every must be >= 1 and --batches >= 2".into(),
            ));
        }
        Ok(s)
    }
}

/// One estimator's spread at one checkpoint.
struct Row {
    iteration: usize,
    env_steps: u64,
    pre_return: f64,
    post_return: f64,
    estimator: Estimator,
    spread: GradientSpread,
}

fn run(s: &Settings) -> Result<Vec<Row>> {
    let factory = make_factory(&EnvConfig {
        name: "point1d-goal".into(),
        max_episode_steps: None,
        task_family: Some("goal-sign".into()),
        ..EnvConfig::default()
    })
    .map_err(|e| Error::InvalidArgument(e.to_string()))?;
    let mut sampler = TaskSampler::new(&factory, s.rollouts, s.seed)?;
    let mut rng = stream_rng(s.seed, Stream::Policy);
    let mut task_rng = stream_rng(s.seed, Stream::Custom(0));
    let policy = GaussianMlpPolicy::new(
        1,
        1,
        PolicyConfig {
            hidden_sizes: vec![s.hidden, s.hidden],
            ..PolicyConfig::default()
        },
        &mut rng,
    )?;
    let alpha = InnerStepSize::uniform(&policy, s.inner_step, false)?;
    let mut vpg = MamlVpg::new(&policy, &alpha, s.learning_rate)?;
    let advantage = finite_horizon_advantages();
    let mut rows = Vec::new();
    let mut env_steps = 0u64;
    for iteration in 0..=s.iterations {
        let theta = policy.parameter_tensors();
        let mut draw = |rng: &mut dyn rand::RngCore, task_rng: &mut dyn rand::RngCore| {
            let tasks = sampler.sample_tasks(s.tasks, task_rng)?;
            draw_meta_batch(
                &mut sampler,
                &policy,
                &theta,
                &alpha.tensors(),
                &tasks,
                Estimator::Lvc,
                &advantage,
                rng,
            )
        };
        if iteration % s.every == 0 {
            let mut grads: Vec<Vec<Vec<f64>>> = vec![Vec::new(); ESTIMATORS.len()];
            let (mut pre, mut post) = (0.0, 0.0);
            for _ in 0..s.batches {
                let batch = draw(&mut rng, &mut task_rng)?;
                pre += batch.pre_return / s.batches as f64;
                post += batch.post_return / s.batches as f64;
                for (g, est) in grads.iter_mut().zip(ESTIMATORS) {
                    g.push(meta_gradient(&policy, &alpha.tensors(), &batch.tasks, est)?);
                }
            }
            for (g, estimator) in grads.iter().zip(ESTIMATORS) {
                let spread = GradientSpread::from_samples(g)?;
                eprintln!(
                    "iteration {iteration:3} steps {env_steps:8} {:7}: std {:.4} rstd {:.2} \
                     rstd(norm) {:.2} |mean| {:.4} (pre {pre:.2} post {post:.2})",
                    estimator.name(),
                    spread.mean_std(),
                    spread.relative_std(),
                    spread.relative_std_of_norm(),
                    norm(&spread.mean),
                );
                rows.push(Row {
                    iteration,
                    env_steps,
                    pre_return: pre,
                    post_return: post,
                    estimator,
                    spread,
                });
            }
        }
        if iteration == s.iterations {
            break;
        }
        let batch = draw(&mut rng, &mut task_rng)?;
        env_steps += batch.env_steps;
        vpg.update(&policy, &alpha, &batch.tasks, Estimator::Lvc)?;
    }
    Ok(rows)
}

fn norm(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}

fn write_csv(rows: &[Row], path: &Path) -> Result<()> {
    let mut text = String::from(
        "iteration,env_steps,pre_update_return,post_update_return,estimator,batches,\
         mean_std,relative_std,relative_std_of_norm,mean_gradient_norm\n",
    );
    for r in rows {
        let _ = writeln!(
            text,
            "{},{},{:.4},{:.4},{},{},{:.6},{:.4},{:.4},{:.6}",
            r.iteration,
            r.env_steps,
            r.pre_return,
            r.post_return,
            r.estimator.name(),
            r.spread.samples,
            r.spread.mean_std(),
            r.spread.relative_std(),
            r.spread.relative_std_of_norm(),
            norm(&r.spread.mean),
        );
    }
    std::fs::write(path, text).map_err(|e| Error::InvalidArgument(format!("{path:?}: {e}")))
}

fn color(estimator: Estimator) -> RGBColor {
    match estimator {
        Estimator::Lvc => RGBColor(31, 119, 180),
        Estimator::Dice => RGBColor(214, 39, 40),
        Estimator::Maml => RGBColor(44, 160, 44),
        Estimator::EMaml => RGBColor(148, 103, 189),
    }
}

type Series = Vec<(String, RGBColor, Vec<(f64, f64)>)>;

/// One panel: `series` against environment steps.
fn panel(
    area: &DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>,
    title: &str,
    y_label: &str,
    series: &Series,
) -> std::result::Result<(), Box<dyn std::error::Error>> {
    let points = series.iter().flat_map(|(_, _, p)| p.iter());
    let (mut x_max, mut y_min, mut y_max) = (1.0f64, f64::INFINITY, f64::NEG_INFINITY);
    for &(x, y) in points {
        x_max = x_max.max(x);
        y_min = y_min.min(y);
        y_max = y_max.max(y);
    }
    let pad = 0.05 * (y_max - y_min).max(1e-9);
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..x_max, (y_min - pad)..(y_max + pad))?;
    chart
        .configure_mesh()
        .x_desc("environment steps of the training run")
        .y_desc(y_label)
        .label_style(("sans-serif", 13))
        .draw()?;
    for (label, c, pts) in series {
        let c = *c;
        chart
            .draw_series(LineSeries::new(pts.clone(), c.stroke_width(2)))?
            .label(label.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2)));
        chart.draw_series(pts.iter().map(|&p| Circle::new(p, 3, c.filled())))?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .label_font(("sans-serif", 13))
        .draw()?;
    Ok(())
}

fn plot(rows: &[Row], path: &Path) -> std::result::Result<(), Box<dyn std::error::Error>> {
    mbrl_core::plot::register_font()?;
    let root = BitMapBackend::new(path, (900, 1100)).into_drawing_area();
    root.fill(&WHITE)?;
    let areas = root.split_evenly((3, 1));
    let by = |f: &dyn Fn(&Row) -> f64| -> Series {
        ESTIMATORS
            .iter()
            .map(|&e| {
                let pts = rows
                    .iter()
                    .filter(|r| r.estimator == e)
                    .map(|r| (r.env_steps as f64, f(r)))
                    .collect();
                (e.name().to_string(), color(e), pts)
            })
            .collect()
    };
    panel(
        &areas[0],
        "Relative std of the meta-gradient: mean over parameters of std / |mean|",
        "relative std",
        &by(&|r| r.spread.relative_std()),
    )?;
    panel(
        &areas[1],
        "Total spread over the norm of the mean meta-gradient",
        "sqrt(tr Cov) / |mean|",
        &by(&|r| r.spread.relative_std_of_norm()),
    )?;
    let lvc: Vec<&Row> = rows
        .iter()
        .filter(|r| r.estimator == Estimator::Lvc)
        .collect();
    let returns = vec![
        (
            "pre-update".to_string(),
            RGBColor(120, 120, 120),
            lvc.iter()
                .map(|r| (r.env_steps as f64, r.pre_return))
                .collect(),
        ),
        (
            "post-update".to_string(),
            RGBColor(31, 119, 180),
            lvc.iter()
                .map(|r| (r.env_steps as f64, r.post_return))
                .collect(),
        ),
    ];
    panel(
        &areas[2],
        "Returns of the LVC-VPG training run (point1d-goal)",
        "mean return",
        &returns,
    )?;
    root.present()?;
    Ok(())
}

fn main() -> Result<()> {
    let s = Settings::from_args()?;
    let start = std::time::Instant::now();
    let rows = higher_order::run(|| run(&s))?;
    std::fs::create_dir_all(&s.out).map_err(|e| Error::InvalidArgument(e.to_string()))?;
    write_csv(&rows, &s.out.join("meta_gradient_relative_std.csv"))?;
    plot(&rows, &s.out.join("meta_gradient_relative_std.png"))
        .map_err(|e| Error::InvalidArgument(format!("plot: {e}")))?;
    eprintln!("done in {:.1} s", start.elapsed().as_secs_f64());
    Ok(())
}
