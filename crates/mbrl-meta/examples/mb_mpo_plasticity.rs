//! Thesis Fig. 11 (Sec. 5.5.4) on `point2d`: the ensemble's uncertainty and the meta-policy's
//! plasticity over the 2D arena, along an MB-MPO run.
//!
//! MB-MPO is trained with the settings of `configs/mb-mpo/point2d.toml` (5 members of 64-64,
//! 300 random then 300 real steps per iteration, 15 meta steps). After every iteration, on an
//! `n x n` grid of states of `[-extent, extent]^2` (`mbrl_meta::plasticity`):
//! - uncertainty: the std across members of the predicted next state for the pre-update
//!   policy's mean action (mean over the two coordinates);
//! - plasticity: the mean over members of `KL(pi_theta(.|s) || pi_theta'_k(.|s))`, with
//!   `theta'_k` the inner step from `--starts` imagined rollouts per member that start at
//!   fixed real start states (`MbMpo::adapt_to_each_member`, its own random stream).
//!
//! Outputs in `--out`: `mb_mpo_plasticity_seed<S>.csv` (the grids), `..._seed<S>.png` (heat
//! maps: uncertainty above, plasticity below, one column per iteration, as Fig. 11) and
//! `..._seed<S>_correlation.csv` (Pearson and Spearman correlation of the two maps over the
//! whole grid and over the start square `[-2, 2]^2`, with the evaluation return).
//!
//! ```sh
//! cargo run --release -p mbrl-meta --example mb_mpo_plasticity -- --out docs/results --seed 0
//! ```

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use candle_core::Tensor;
use mbrl_core::algorithm::{Algorithm, BuildContext};
use mbrl_core::policy::GaussianPolicy;
use mbrl_core::rollout::{eval_seeds, evaluate};
use mbrl_core::seeding::{stream_rng, Stream};
use mbrl_core::{Error, Result};

/// Errors of the different crates (environments, models, plotting).
type AnyResult<T> = std::result::Result<T, Box<dyn std::error::Error>>;
use mbrl_envs::point2d::OptimalPolicy as Optimal;
use mbrl_envs::point2d::INIT_RANGE;
use mbrl_envs::{make_factory, EnvConfig};
use mbrl_meta::mb_mpo::{MbMpo, MbMpoConfig, Settings as MbMpoSettings};
use mbrl_meta::plasticity::{ensemble_std, grid, partial_pearson, pearson, plasticity, spearman};
use mbrl_models::{ensemble_factory, EnsembleConfig};
use mbrl_policy_opt::model_data::{env_and_model, real_start_states};
use plotters::prelude::*;

/// Command-line settings.
#[derive(clap::Parser)]
struct Settings {
    /// Output directory.
    #[arg(long, default_value = "docs/results")]
    out: PathBuf,
    /// Run seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// MB-MPO iterations (a measurement after each).
    #[arg(long, default_value_t = 3)]
    iterations: usize,
    /// Grid points per axis.
    #[arg(long, default_value_t = 31)]
    grid: usize,
    /// Half-width of the grid.
    #[arg(long, default_value_t = 3.0)]
    extent: f64,
    /// Imagined rollouts per member for the inner step.
    #[arg(long, default_value_t = 40)]
    starts: usize,
    /// Inner step size.
    #[arg(long, default_value_t = 0.001)]
    inner_step: f64,
}

impl Settings {
    /// The command line, checked.
    fn from_args() -> Result<Self> {
        let s = <Settings as clap::Parser>::parse();
        if s.iterations == 0 || s.starts == 0 {
            return Err(Error::InvalidArgument(
                "--iterations and --starts must be at least 1".into(),
            ));
        }
        Ok(s)
    }
}

/// MB-MPO as `configs/mb-mpo/point2d.toml`, with inner step size `inner_step`.
fn mb_mpo(seed: u64, inner_step: f64) -> AnyResult<MbMpo> {
    let model = EnsembleConfig {
        members: 5,
        hidden_sizes: vec![64, 64],
        batch_size: 256,
        max_epochs: 300,
        ..EnsembleConfig::default()
    };
    let ctx = BuildContext {
        env_factory: make_factory(&EnvConfig::default())?,
        model_factory: Some(ensemble_factory(model)?),
        seed,
        config: serde_json::json!({}),
    };
    let (env, model, model_rng) = env_and_model(&ctx, "mb-mpo")?;
    let settings = MbMpoSettings {
        mb_mpo: MbMpoConfig {
            initial_random_steps: 300,
            steps_per_iteration: 300,
            meta_steps: 15,
            tasks_per_model: 1,
            rollouts_per_task: 40,
            start_state_pool: 1000,
            inner_step_size: inner_step,
            ..MbMpoConfig::default()
        },
        ..MbMpoSettings::default()
    };
    Ok(MbMpo::new(env, model, model_rng, seed, settings)?)
}

/// The two maps after one iteration.
struct Maps {
    iteration: usize,
    env_steps: u64,
    eval_return: f64,
    uncertainty: Vec<f64>,
    kl: Vec<f64>,
}

/// How the two maps relate over one region of the grid.
struct Correlation {
    region: &'static str,
    pearson: f64,
    spearman: f64,
    /// Pearson correlation of the uncertainty with the distance to the origin.
    uncertainty_distance: f64,
    /// Pearson correlation of the plasticity with the distance to the origin.
    kl_distance: f64,
    /// Pearson correlation of the two maps given the distance to the origin.
    partial: f64,
}

/// The correlations over the whole grid and over the start square `[-2, 2]^2`.
fn correlations(maps: &Maps, points: &[[f32; 2]]) -> Vec<Correlation> {
    type Region = (&'static str, fn(&[f32; 2]) -> bool);
    let regions: [Region; 2] = [
        ("grid", |_| true),
        ("start square", |p| {
            p[0].abs() <= INIT_RANGE && p[1].abs() <= INIT_RANGE
        }),
    ];
    let distance: Vec<f64> = points
        .iter()
        .map(|p| f64::from(p[0]).hypot(f64::from(p[1])))
        .collect();
    regions
        .iter()
        .map(|(region, keep)| {
            let pick = |v: &[f64]| -> Vec<f64> {
                v.iter()
                    .zip(points)
                    .filter(|(_, p)| keep(p))
                    .map(|(x, _)| *x)
                    .collect()
            };
            let (u, k, d) = (pick(&maps.uncertainty), pick(&maps.kl), pick(&distance));
            Correlation {
                region,
                pearson: pearson(&u, &k),
                spearman: spearman(&u, &k),
                uncertainty_distance: pearson(&u, &d),
                kl_distance: pearson(&k, &d),
                partial: partial_pearson(&u, &k, &d),
            }
        })
        .collect()
}

/// Trains and measures the maps after every iteration.
fn run(s: &Settings, states: &Tensor) -> AnyResult<(Vec<Maps>, f64)> {
    let factory = make_factory(&EnvConfig::default())?;
    let seeds = eval_seeds(s.seed, 20);
    let optimum = evaluate(factory()?.as_mut(), &Optimal, &seeds)?.mean_return();
    let mut analysis_rng = stream_rng(s.seed, Stream::Custom(11));
    let starts = real_start_states(factory()?.as_mut(), &mut analysis_rng, s.starts)?;
    let mut algo = mb_mpo(s.seed, s.inner_step)?;
    let mut out = Vec::new();
    for iteration in 1..=s.iterations {
        let stats = algo.train_iteration(iteration as u64)?;
        let policy = algo.meta_policy();
        let eval_return = evaluate(factory()?.as_mut(), policy, &seeds)?.mean_return();
        let adapted = algo.adapt_to_each_member(&starts, &mut analysis_rng)?;
        let mean_action = policy.distribution(states)?.mean;
        let uncertainty = ensemble_std(algo.model(), states, &mean_action)?;
        let kl = plasticity(policy, &policy.parameter_tensors(), &adapted, states)?;
        let maps = Maps {
            iteration,
            env_steps: stats.env_steps,
            eval_return,
            uncertainty: uncertainty.to_vec1()?,
            kl: kl.to_vec1()?,
        };
        eprintln!(
            "iteration {iteration}: {} real steps, return {eval_return:.2} (optimum \
             {optimum:.2}), imagined pre {:.2} post {:.2}",
            stats.env_steps,
            stats.metrics["pre_update_imagined_return"],
            stats.metrics["post_update_imagined_return"],
        );
        out.push(maps);
    }
    Ok((out, optimum))
}

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text)
        .map_err(|e| Error::InvalidArgument(format!("writing {}: {e}", path.display())))
}

fn write_grid_csv(maps: &[Maps], points: &[[f32; 2]], path: &Path) -> Result<()> {
    let mut text = String::from("iteration,x,y,uncertainty,kl\n");
    for m in maps {
        for ((p, u), k) in points.iter().zip(&m.uncertainty).zip(&m.kl) {
            let _ = writeln!(text, "{},{},{},{u:.5e},{k:.5e}", m.iteration, p[0], p[1]);
        }
    }
    write(path, &text)
}

fn write_correlation_csv(
    s: &Settings,
    maps: &[Maps],
    points: &[[f32; 2]],
    optimum: f64,
    path: &Path,
) -> Result<()> {
    let mut text = String::from(
        "seed,inner_step,iteration,env_steps,eval_return,optimum,region,pearson,spearman,\
         pearson_uncertainty_distance,pearson_kl_distance,partial_pearson_given_distance,\
         mean_uncertainty,mean_kl\n",
    );
    for m in maps {
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        for c in correlations(m, points) {
            let _ = writeln!(
                text,
                "{},{},{},{},{:.3},{optimum:.3},{},{:.4},{:.4},{:.4},{:.4},{:.4},{:.5e},{:.5e}",
                s.seed,
                s.inner_step,
                m.iteration,
                m.env_steps,
                m.eval_return,
                c.region,
                c.pearson,
                c.spearman,
                c.uncertainty_distance,
                c.kl_distance,
                c.partial,
                mean(&m.uncertainty),
                mean(&m.kl),
            );
            eprintln!(
                "iteration {} {}: pearson {:.3} spearman {:.3}, with distance: std {:.3} \
                 kl {:.3}, partial {:.3}",
                m.iteration,
                c.region,
                c.pearson,
                c.spearman,
                c.uncertainty_distance,
                c.kl_distance,
                c.partial
            );
        }
    }
    write(path, &text)
}

/// The viridis colour map at `t` in `[0, 1]`: linear between five of its stops.
fn viridis(t: f64) -> RGBColor {
    const STOPS: [(f64, f64, f64); 5] = [
        (68.0, 1.0, 84.0),
        (59.0, 82.0, 139.0),
        (33.0, 145.0, 140.0),
        (94.0, 201.0, 98.0),
        (253.0, 231.0, 37.0),
    ];
    let x = t.clamp(0.0, 1.0) * (STOPS.len() - 1) as f64;
    let i = (x.floor() as usize).min(STOPS.len() - 2);
    let (a, b, f) = (STOPS[i], STOPS[i + 1], x - i as f64);
    let mix = |p: f64, q: f64| (p + (q - p) * f).round() as u8;
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// One heat map of `values` (row-major over the grid, `y` outer) with a colour bar.
fn heat_map(
    area: &DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>,
    title: &str,
    values: &[f64],
    n: usize,
    extent: f64,
) -> AnyResult<()> {
    let (lo, hi) = values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    let hi = if hi > lo { hi } else { lo + 1e-12 };
    let color = |v: f64| viridis((v - lo) / (hi - lo));
    let (w, _) = area.dim_in_pixel();
    let (map_area, bar_area) = area.split_horizontally(w.saturating_sub(85));
    let mut chart = ChartBuilder::on(&map_area)
        .caption(title, ("sans-serif", 15))
        .margin(6)
        .x_label_area_size(30)
        .y_label_area_size(35)
        .build_cartesian_2d(-extent..extent, -extent..extent)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc("x")
        .y_desc("y")
        .label_style(("sans-serif", 12))
        .draw()?;
    let half = extent / (n - 1) as f64;
    let centre = |j: usize| -extent + 2.0 * extent * j as f64 / (n - 1) as f64;
    chart.draw_series(values.iter().enumerate().map(|(idx, &v)| {
        let (x, y) = (centre(idx % n), centre(idx / n));
        Rectangle::new(
            [(x - half, y - half), (x + half, y + half)],
            color(v).filled(),
        )
    }))?;
    let r = f64::from(INIT_RANGE);
    chart.draw_series(std::iter::once(PathElement::new(
        vec![(-r, -r), (r, -r), (r, r), (-r, r), (-r, -r)],
        WHITE.mix(0.7).stroke_width(1),
    )))?;
    let mut bar = ChartBuilder::on(&bar_area)
        .margin_top(30)
        .margin_bottom(36)
        .margin_left(4)
        .right_y_label_area_size(58)
        .build_cartesian_2d(0.0..1.0, lo..hi)?;
    bar.configure_mesh()
        .disable_mesh()
        .disable_x_axis()
        .y_labels(5)
        .y_label_formatter(&|v| format!("{v:.1e}"))
        .label_style(("sans-serif", 11))
        .draw()?;
    let steps = 60;
    bar.draw_series((0..steps).map(|i| {
        let (a, b) = (
            lo + (hi - lo) * i as f64 / steps as f64,
            lo + (hi - lo) * (i + 1) as f64 / steps as f64,
        );
        Rectangle::new([(0.0, a), (1.0, b)], color((a + b) / 2.0).filled())
    }))?;
    Ok(())
}

/// Uncertainty maps above, plasticity maps below, one column per iteration (Fig. 11).
fn plot(s: &Settings, maps: &[Maps], points: &[[f32; 2]], path: &Path) -> AnyResult<()> {
    mbrl_core::plot::register_font()?;
    let width = 430 * maps.len() as u32;
    let root = BitMapBackend::new(path, (width, 800)).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(
        &format!(
            "MB-MPO on point2d (seed {}, inner step {}): ensemble std (top) vs mean KL(pre || \
             adapted) (bottom)",
            s.seed, s.inner_step
        ),
        ("sans-serif", 17),
    )?;
    let cells = root.split_evenly((2, maps.len()));
    for (col, m) in maps.iter().enumerate() {
        let c = correlations(m, points);
        heat_map(
            &cells[col],
            &format!(
                "iter {} ({} steps, return {:.1}): std",
                m.iteration, m.env_steps, m.eval_return
            ),
            &m.uncertainty,
            s.grid,
            s.extent,
        )?;
        heat_map(
            &cells[maps.len() + col],
            &format!(
                "KL; pearson {:.2}, spearman {:.2}, partial {:.2}",
                c[0].pearson, c[0].spearman, c[0].partial
            ),
            &m.kl,
            s.grid,
            s.extent,
        )?;
    }
    root.present()?;
    Ok(())
}

fn main() -> AnyResult<()> {
    let s = Settings::from_args()?;
    let start = std::time::Instant::now();
    let states = grid(s.extent, s.grid)?;
    let points: Vec<[f32; 2]> = states
        .to_vec2::<f32>()?
        .into_iter()
        .map(|p| [p[0], p[1]])
        .collect();
    let (maps, optimum) = run(&s, &states)?;
    std::fs::create_dir_all(&s.out)?;
    let stem = format!("mb_mpo_plasticity_seed{}", s.seed);
    write_grid_csv(&maps, &points, &s.out.join(format!("{stem}.csv")))?;
    write_correlation_csv(
        &s,
        &maps,
        &points,
        optimum,
        &s.out.join(format!("{stem}_correlation.csv")),
    )?;
    plot(&s, &maps, &points, &s.out.join(format!("{stem}.png")))?;
    eprintln!("done in {:.1} s", start.elapsed().as_secs_f64());
    Ok(())
}
