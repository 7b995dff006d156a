//! Thesis Fig. 17 (Sec. 6.7.4) on `point1d-goal`: meta-gradient directions of formulation I
//! (DiCE, the exact gradient of the post-update return) and formulation II (E-MAML) for a
//! policy with two parameters, `a ~ N(theta_0 s + theta_1, sigma^2)`.
//!
//! 1. Field: on a grid over `(theta_0, theta_1)`, `--batches` meta-batches (goals +1 and -1,
//!    `--tasks` of each) are drawn with common random numbers at every grid point; both
//!    formulations' meta-gradients are computed on the same batches (the inner step is shared,
//!    `mbrl_meta::gradient_variance`). The CSV holds the mean gradients, their standard
//!    errors and the mean post-update return; the agreement of each field with the
//!    finite-difference gradient of that return surface is printed.
//! 2. Paths: from `--start`, `--steps` plain gradient-ascent steps (VPG, as in the thesis) with
//!    each formulation's meta-gradient, one fresh meta-batch per step.
//!
//! ```sh
//! cargo run --release -p mbrl-meta --example formulation_fields -- --out docs/results --seed 0
//! ```

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use candle_core::Tensor;
use mbrl_core::policy::GaussianPolicy;
use mbrl_core::seeding::{stream_rng, Stream};
use mbrl_core::task::Task;
use mbrl_core::{Error, Result};
use mbrl_envs::{make_factory, EnvConfig};
use mbrl_meta::adaptation::InnerStepSize;
use mbrl_meta::estimators::Estimator;
use mbrl_meta::gradient_variance::{
    draw_meta_batch, finite_horizon_advantages, meta_gradient, GradientSpread,
};
use mbrl_meta::higher_order;
use mbrl_meta::linear_policy::LinearGaussianPolicy;
use mbrl_meta::task_sampler::TaskSampler;
use plotters::prelude::*;

/// Formulation I (DiCE, red in the thesis) and formulation II (E-MAML, green).
const FORMULATIONS: [(Estimator, &str, RGBColor); 2] = [
    (
        Estimator::Dice,
        "formulation I (DiCE)",
        RGBColor(200, 30, 30),
    ),
    (
        Estimator::EMaml,
        "formulation II (E-MAML)",
        RGBColor(20, 140, 40),
    ),
];
const THETA0: (f64, f64) = (-1.4, 0.0);
const THETA1: (f64, f64) = (-1.0, 1.0);

/// Command-line settings.
#[derive(clap::Parser)]
struct Settings {
    /// Output directory.
    #[arg(long, default_value = "docs/results")]
    out: PathBuf,
    /// Run seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Grid points per parameter axis.
    #[arg(long, default_value_t = 11)]
    grid: usize,
    /// Meta-batches per grid point.
    #[arg(long, default_value_t = 8)]
    batches: usize,
    /// Tasks per meta-batch.
    #[arg(long, default_value_t = 2)]
    tasks: usize,
    /// Rollouts per task.
    #[arg(long, default_value_t = 20)]
    rollouts: usize,
    /// Policy standard deviation.
    #[arg(long, default_value_t = 0.3)]
    std: f64,
    /// Inner step size.
    #[arg(long, default_value_t = 0.05)]
    inner_step: f64,
    /// Learning rate of the gradient-ascent paths.
    #[arg(long, default_value_t = 0.05)]
    learning_rate: f64,
    /// Steps of each path.
    #[arg(long, default_value_t = 60)]
    steps: usize,
    /// Start of the paths, `theta_0,theta_1`.
    #[arg(long, default_value = "-1.2,0.8", value_parser = parse_pair, allow_hyphen_values = true)]
    start: (f64, f64),
}

impl Settings {
    /// The command line, checked.
    fn from_args() -> Result<Self> {
        let s = <Settings as clap::Parser>::parse();
        if s.grid < 3 || s.batches < 2 || s.tasks == 0 {
            return Err(Error::InvalidArgument(
                "--grid >= 3, --batches >= 2 and --tasks >= 1 are needed".into(),
            ));
        }
        Ok(s)
    }
}

/// `a,b` as a pair of numbers.
fn parse_pair(text: &str) -> std::result::Result<(f64, f64), String> {
    let (a, b) = text.split_once(',').ok_or("expected theta_0,theta_1")?;
    let number = |v: &str| v.trim().parse::<f64>().map_err(|e| format!("{v}: {e}"));
    Ok((number(a)?, number(b)?))
}

/// Both formulations' statistics at one grid point.
struct Cell {
    theta: (f64, f64),
    post_return: f64,
    pre_return: f64,
    spreads: Vec<GradientSpread>,
}

/// One formulation's optimisation path: `(theta_0, theta_1, post-update return)` per step.
type Path2 = Vec<(f64, f64, f64)>;

struct Experiment<'a> {
    s: &'a Settings,
    sampler: TaskSampler,
    tasks: Vec<Task>,
}

impl Experiment<'_> {
    /// A meta-batch at `theta` and both formulations' meta-gradients on it.
    fn gradients(
        &mut self,
        theta: (f64, f64),
        rng: &mut dyn rand::RngCore,
    ) -> Result<(f64, f64, Vec<Vec<f64>>)> {
        let policy = LinearGaussianPolicy::new(&[theta.0 as f32], &[theta.1 as f32], self.s.std)?;
        let alpha = InnerStepSize::uniform(&policy, self.s.inner_step, false)?.tensors();
        let params: Vec<Tensor> = policy.parameter_tensors();
        let batch = draw_meta_batch(
            &mut self.sampler,
            &policy,
            &params,
            &alpha,
            &self.tasks,
            Estimator::Dice,
            &finite_horizon_advantages(),
            rng,
        )?;
        let grads = FORMULATIONS
            .iter()
            .map(|(est, _, _)| meta_gradient(&policy, &alpha, &batch.tasks, *est))
            .collect::<Result<Vec<_>>>()?;
        Ok((batch.pre_return, batch.post_return, grads))
    }
}

fn goal_tasks(per_goal: usize) -> Vec<Task> {
    (0..per_goal)
        .flat_map(|_| [1.0, -1.0])
        .map(|g: f64| Task::new(format!("goal={g:+}"), vec![g]))
        .collect()
}

fn grid_value(range: (f64, f64), i: usize, n: usize) -> f64 {
    range.0 + (range.1 - range.0) * i as f64 / (n - 1) as f64
}

fn run(s: &Settings) -> Result<(Vec<Cell>, Vec<Path2>)> {
    let factory = make_factory(&EnvConfig {
        name: "point1d-goal".into(),
        max_episode_steps: None,
        task_family: Some("goal-sign".into()),
        ..EnvConfig::default()
    })
    .map_err(|e| Error::InvalidArgument(e.to_string()))?;
    let mut cells = Vec::with_capacity(s.grid * s.grid);
    for i in 0..s.grid {
        for j in 0..s.grid {
            let theta = (grid_value(THETA0, i, s.grid), grid_value(THETA1, j, s.grid));
            // Common random numbers: every grid point sees the same reset states and noise.
            let mut exp = Experiment {
                s,
                sampler: TaskSampler::new(&factory, s.rollouts, s.seed)?,
                tasks: goal_tasks(s.tasks),
            };
            let mut rng = stream_rng(s.seed, Stream::Policy);
            let mut samples = vec![Vec::new(); FORMULATIONS.len()];
            let (mut pre, mut post) = (0.0, 0.0);
            for _ in 0..s.batches {
                let (pr, po, grads) = exp.gradients(theta, &mut rng)?;
                pre += pr / s.batches as f64;
                post += po / s.batches as f64;
                for (acc, g) in samples.iter_mut().zip(grads) {
                    acc.push(g);
                }
            }
            let spreads = samples
                .iter()
                .map(|g| GradientSpread::from_samples(g))
                .collect::<Result<Vec<_>>>()?;
            cells.push(Cell {
                theta,
                post_return: post,
                pre_return: pre,
                spreads,
            });
        }
    }
    let mut paths = Vec::new();
    for (k, (_, name, _)) in FORMULATIONS.iter().enumerate() {
        let mut exp = Experiment {
            s,
            sampler: TaskSampler::new(&factory, s.rollouts, s.seed + 1)?,
            tasks: goal_tasks(s.tasks),
        };
        let mut rng = stream_rng(s.seed + 1, Stream::Policy);
        let mut theta = s.start;
        let mut path = Vec::with_capacity(s.steps + 1);
        for step in 0..=s.steps {
            let (_, post, grads) = exp.gradients(theta, &mut rng)?;
            path.push((theta.0, theta.1, post));
            if step < s.steps {
                theta.0 += s.learning_rate * grads[k][0];
                theta.1 += s.learning_rate * grads[k][1];
            }
        }
        let last = path.last().copied().unwrap_or_default();
        eprintln!(
            "{name}: path from {:?} ends at ({:.3}, {:.3}), post-update return {:.2}",
            s.start, last.0, last.1, last.2
        );
        paths.push(path);
    }
    Ok((cells, paths))
}

/// The finite-difference gradient of the post-update return surface at grid cell `(i, j)`
/// (one-sided at the border).
fn surface_gradient(cells: &[Cell], n: usize, i: usize, j: usize) -> (f64, f64) {
    let at = |a: usize, b: usize| &cells[a * n + b];
    let (i0, i1) = (i.saturating_sub(1), (i + 1).min(n - 1));
    let (j0, j1) = (j.saturating_sub(1), (j + 1).min(n - 1));
    let d0 =
        (at(i1, j).post_return - at(i0, j).post_return) / (at(i1, j).theta.0 - at(i0, j).theta.0);
    let d1 =
        (at(i, j1).post_return - at(i, j0).post_return) / (at(i, j1).theta.1 - at(i, j0).theta.1);
    (d0, d1)
}

fn cosine(a: (f64, f64), b: (f64, f64)) -> f64 {
    let n = (a.0.hypot(a.1) * b.0.hypot(b.1)).max(1e-12);
    (a.0 * b.0 + a.1 * b.1) / n
}

/// Per formulation: mean cosine to the surface gradient, fraction of cells with a positive
/// cosine, and the median over cells of the per-batch spread relative to the mean's norm.
fn agreement(cells: &[Cell], n: usize) -> Vec<(f64, f64, f64)> {
    (0..FORMULATIONS.len())
        .map(|k| {
            let cos: Vec<f64> = (0..n * n)
                .map(|c| {
                    let m = &cells[c].spreads[k].mean;
                    cosine((m[0], m[1]), surface_gradient(cells, n, c / n, c % n))
                })
                .collect();
            let mut rel: Vec<f64> = cells
                .iter()
                .map(|c| c.spreads[k].relative_std_of_norm())
                .collect();
            rel.sort_by(f64::total_cmp);
            let positive = cos.iter().filter(|&&c| c > 0.0).count() as f64 / cos.len() as f64;
            (
                cos.iter().sum::<f64>() / cos.len() as f64,
                positive,
                rel[rel.len() / 2],
            )
        })
        .collect()
}

fn write_csv(cells: &[Cell], paths: &[Path2], n: usize, path: &Path) -> Result<()> {
    let mut text = String::from(
        "kind,formulation,step,theta0,theta1,pre_update_return,post_update_return,\
         grad0,grad1,stderr0,stderr1,batches,surface_grad0,surface_grad1\n",
    );
    for (c, cell) in cells.iter().enumerate() {
        let surface = surface_gradient(cells, n, c / n, c % n);
        for (k, (est, _, _)) in FORMULATIONS.iter().enumerate() {
            let sp = &cell.spreads[k];
            let se = sp.standard_error();
            let _ = writeln!(
                text,
                "field,{},,{:.3},{:.3},{:.4},{:.4},{:.6},{:.6},{:.6},{:.6},{},{:.4},{:.4}",
                est.name(),
                cell.theta.0,
                cell.theta.1,
                cell.pre_return,
                cell.post_return,
                sp.mean[0],
                sp.mean[1],
                se[0],
                se[1],
                sp.samples,
                surface.0,
                surface.1,
            );
        }
    }
    for (k, p) in paths.iter().enumerate() {
        for (step, (t0, t1, ret)) in p.iter().enumerate() {
            let _ = writeln!(
                text,
                "path,{},{step},{t0:.4},{t1:.4},,{ret:.4},,,,,,,",
                FORMULATIONS[k].0.name()
            );
        }
    }
    std::fs::write(path, text).map_err(|e| Error::InvalidArgument(format!("{path:?}: {e}")))
}

/// A colour for `v` in `[lo, hi]`: dark blue (low) to yellow (high).
fn heat(v: f64, lo: f64, hi: f64) -> RGBColor {
    let t = ((v - lo) / (hi - lo).max(1e-12)).clamp(0.0, 1.0);
    let mix = |a: f64, b: f64| (a + (b - a) * t) as u8;
    RGBColor(mix(40.0, 250.0), mix(40.0, 230.0), mix(110.0, 120.0))
}

fn plot(
    cells: &[Cell],
    paths: &[Path2],
    n: usize,
    path: &Path,
) -> std::result::Result<(), Box<dyn std::error::Error>> {
    mbrl_core::plot::register_font()?;
    let root = BitMapBackend::new(path, (1400, 700)).into_drawing_area();
    root.fill(&WHITE)?;
    // Colour scale from the 10th percentile to the best cell: a few very poor cells at the
    // unstable edge (theta_0 near 0) would otherwise wash out the rest.
    let mut returns: Vec<f64> = cells.iter().map(|c| c.post_return).collect();
    returns.sort_by(f64::total_cmp);
    let (lo, hi) = (returns[returns.len() / 10], returns[returns.len() - 1]);
    let best = cells
        .iter()
        .max_by(|a, b| a.post_return.total_cmp(&b.post_return))
        .map(|c| c.theta)
        .unwrap_or_default();
    let (h0, h1) = (
        (THETA0.1 - THETA0.0) / (n - 1) as f64,
        (THETA1.1 - THETA1.0) / (n - 1) as f64,
    );
    for (k, area) in root.split_evenly((1, 2)).iter().enumerate() {
        let (_, name, color) = FORMULATIONS[k];
        let mut chart = ChartBuilder::on(area)
            .caption(
                format!("{name}: mean meta-gradient directions and VPG path"),
                ("sans-serif", 18),
            )
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d(
                (THETA0.0 - h0 / 2.0)..(THETA0.1 + h0 / 2.0),
                (THETA1.0 - h1 / 2.0)..(THETA1.1 + h1 / 2.0),
            )?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc("theta_0 (slope)")
            .y_desc("theta_1 (offset)")
            .label_style(("sans-serif", 14))
            .draw()?;
        chart.draw_series(cells.iter().map(|c| {
            Rectangle::new(
                [
                    (c.theta.0 - h0 / 2.0, c.theta.1 - h1 / 2.0),
                    (c.theta.0 + h0 / 2.0, c.theta.1 + h1 / 2.0),
                ],
                heat(c.post_return, lo, hi).filled(),
            )
        }))?;
        let arrow = 0.42 * h0.min(h1);
        for c in cells {
            let m = &c.spreads[k].mean;
            let len = m[0].hypot(m[1]).max(1e-12);
            let (dx, dy) = (arrow * m[0] / len, arrow * m[1] / len);
            let tip = (c.theta.0 + dx, c.theta.1 + dy);
            let head = |angle: f64| {
                let (sin, cos) = angle.sin_cos();
                (
                    tip.0 - 0.35 * (dx * cos - dy * sin),
                    tip.1 - 0.35 * (dx * sin + dy * cos),
                )
            };
            let style = color.stroke_width(2);
            chart.draw_series([
                PathElement::new(vec![c.theta, tip], style),
                PathElement::new(vec![head(0.5), tip, head(-0.5)], style),
            ])?;
        }
        let pts: Vec<(f64, f64)> = paths[k].iter().map(|p| (p.0, p.1)).collect();
        chart
            .draw_series(LineSeries::new(pts.clone(), WHITE.stroke_width(3)))?
            .label("VPG path (white, from the square)")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], BLACK.stroke_width(3)));
        chart.draw_series(pts.iter().map(|&p| Circle::new(p, 3, color.filled())))?;
        if let Some(&first) = pts.first() {
            chart.draw_series([Rectangle::new(
                [
                    (first.0 - 0.03, first.1 - 0.03),
                    (first.0 + 0.03, first.1 + 0.03),
                ],
                BLACK.filled(),
            )])?;
        }
        chart
            .draw_series([TriangleMarker::new(best, 10, BLACK.filled())])?
            .label(format!(
                "best cell (post-update return {hi:.1}); colour: post-update return {lo:.1} (dark) to {hi:.1}"
            ))
            .legend(|(x, y)| TriangleMarker::new((x + 9, y), 6, BLACK.filled()));
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 13))
            .draw()?;
    }
    root.present()?;
    Ok(())
}

fn main() -> Result<()> {
    let s = Settings::from_args()?;
    let start = std::time::Instant::now();
    let (cells, paths) = higher_order::run(|| run(&s))?;
    for (k, (mean_cos, positive, rel)) in agreement(&cells, s.grid).into_iter().enumerate() {
        eprintln!(
            "{}: mean cosine to the post-update return's gradient {mean_cos:.3}, positive at \
             {:.0}% of cells, median per-batch spread / |mean| {rel:.2}",
            FORMULATIONS[k].1,
            100.0 * positive
        );
    }
    std::fs::create_dir_all(&s.out).map_err(|e| Error::InvalidArgument(e.to_string()))?;
    write_csv(
        &cells,
        &paths,
        s.grid,
        &s.out.join("formulation_gradient_fields.csv"),
    )?;
    plot(
        &cells,
        &paths,
        s.grid,
        &s.out.join("formulation_gradient_fields.png"),
    )
    .map_err(|e| Error::InvalidArgument(format!("plot: {e}")))?;
    eprintln!("done in {:.1} s", start.elapsed().as_secs_f64());
    Ok(())
}
