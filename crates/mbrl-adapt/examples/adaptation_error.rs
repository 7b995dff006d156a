//! Thesis Sec. 9.4.1 (Fig. 31): the model error of GrBAL or ReBAL before and after adaptation
//! along a trajectory, on the pendulum `motor` family (a motor applying `g u`, `|g| ~ U(0.5,
//! 1.5)` of either sign; held-out `g = +-1.8`).
//!
//! Per seed, the method is trained as in the learning test (`configs/grbal/pendulum.toml`: 5
//! iterations of 5 episodes). Then its controller runs one 200-step episode that starts in the
//! held-out gain `+1.8` and switches to `-1.8` at step 100. At every step `t` with
//! `M <= t <= T - K`, the model's error on the next `K` transitions (normalised MSE of the state
//! change) is measured twice: unadapted ("before": GrBAL's meta-learned prior, ReBAL's zero
//! context), and adapted on the `M` transitions before `t` ("after": GrBAL's inner step,
//! ReBAL's context read from them), the model the controller planned with.
//!
//! Run: `cargo run --release -p mbrl-adapt --example adaptation_error -- [--method grbal|rebal]
//! [--seeds 0,1,2] [--out docs/results]`. It writes `<method>_adaptation_error.csv` (one row per
//! seed and step) and `<method>_adaptation_error.png` (mean and sample standard deviation over
//! seeds, log scale), and prints a Markdown table.

use candle_core::Tensor;
use mbrl_adapt::adaptation::adapt;
use mbrl_adapt::config::{AdaptConfig, GrbalConfig, RebalConfig};
use mbrl_adapt::segments::Windows;
use mbrl_adapt::trainer::{AdaptiveMbrl, Learner, Method};
use mbrl_core::algorithm::Algorithm;
use mbrl_core::data::Trajectory;
use mbrl_core::env::Env;
use mbrl_core::metrics::mean_and_sample_std;
use mbrl_core::rollout::{rollout_episode_switching, set_task, TaskSwitch};
use mbrl_envs::registry::{make_factory, EnvConfig};
use mbrl_policy_opt::planners::{PlannerConfig, PlannerKind};
use plotters::prelude::*;
use rand::SeedableRng;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

const ITERATIONS: u64 = 5;
const SWITCH_STEP: usize = 100;

fn config() -> AdaptConfig {
    AdaptConfig {
        hidden_sizes: vec![64, 64],
        max_epochs: 60,
        grbal: GrbalConfig {
            inner_learning_rate: 0.1,
            learn_inner_learning_rate: true,
            ..GrbalConfig::default()
        },
        rebal: RebalConfig {
            hidden_size: 64,
            ..RebalConfig::default()
        },
        planner: PlannerConfig {
            kind: PlannerKind::Mppi,
            candidates: 500,
            horizon: 25,
            iterations: 1,
            ..PlannerConfig::default()
        },
        ..AdaptConfig::default()
    }
}

fn pendulum() -> Result<Box<dyn Env>> {
    let config = EnvConfig {
        name: "pendulum".into(),
        task_family: Some("motor".into()),
        ..EnvConfig::default()
    };
    Ok(make_factory(&config)?()?)
}

/// Every window of `M + K` consecutive transitions of `traj`, the first starting at step 0.
fn all_windows(traj: &Trajectory, window: usize) -> Result<Windows> {
    let (d, a) = (traj.obs_dim, traj.act_dim);
    let next = traj.next_observations();
    let n = traj.len() + 1 - window;
    let (mut obs, mut act, mut nxt) = (Vec::new(), Vec::new(), Vec::new());
    for s in 0..n {
        obs.extend_from_slice(&traj.observations[s * d..(s + window) * d]);
        act.extend_from_slice(&traj.actions[s * a..(s + window) * a]);
        nxt.extend_from_slice(&next[s * d..(s + window) * d]);
    }
    Ok(Windows::from_rows(obs, act, nxt, n, window)?)
}

/// Per step `t = M .. T - K`: (error before, error after adaptation) for one seed.
fn errors_along_episode(method: Method, seed: u64) -> Result<Vec<(f64, f64)>> {
    let config = config();
    let mut algo = AdaptiveMbrl::new(pendulum()?, method, config.clone(), seed)?;
    for i in 1..=ITERATIONS {
        algo.train_iteration(i)?;
    }
    let mut env = pendulum()?;
    let tasks = env
        .task_distribution()
        .ok_or("pendulum lost its task family")?
        .test_tasks();
    let (first, second) = (&tasks[0], &tasks[1]);
    set_task(env.as_mut(), first)?;
    let switch = TaskSwitch {
        at_step: SWITCH_STEP,
        task: second,
    };
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed + 100);
    let traj = rollout_episode_switching(
        env.as_mut(),
        algo.policy(),
        Some(seed + 100),
        true,
        200,
        Some(switch),
        &mut rng,
    )?;
    let windows = all_windows(&traj, config.window())?;
    match algo.learner() {
        Learner::Mlp(learner) => {
            let (past, future) = windows.split(config.past_steps)?;
            let prior = learner.model.mlp().copies()?;
            let rates = learner.rates.tensors();
            let adapted = adapt(&learner.model, &prior, &past, &rates, true)?;
            let per_window = |weights: &[Tensor]| -> Result<Vec<f32>> {
                Ok(learner
                    .model
                    .loss(weights, &future.obs, &future.act, &future.next_obs)?
                    .to_vec1::<f32>()?)
            };
            let (before, after) = (per_window(&prior)?, per_window(&adapted)?);
            Ok(before
                .iter()
                .zip(&after)
                .map(|(&b, &a)| (b as f64, a as f64))
                .collect())
        }
        Learner::Recurrent(learner) => {
            let weights = learner.model.copies()?;
            (0..windows.count()?)
                .map(|i| {
                    let one = Windows {
                        obs: windows.obs.narrow(0, i, 1)?,
                        act: windows.act.narrow(0, i, 1)?,
                        next_obs: windows.next_obs.narrow(0, i, 1)?,
                    };
                    let loss = |read_past: bool| -> Result<f64> {
                        let l = learner.model.future_loss(
                            &weights,
                            &one,
                            config.past_steps,
                            read_past,
                        )?;
                        Ok(l.to_scalar::<f32>()? as f64)
                    };
                    Ok((loss(false)?, loss(true)?))
                })
                .collect()
        }
    }
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let value = |flag: &str, default: &str| -> String {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1).cloned())
            .unwrap_or_else(|| default.to_string())
    };
    let method = match value("--method", "grbal").as_str() {
        "grbal" => Method::Grbal,
        "rebal" => Method::Rebal,
        other => return Err(format!("--method: `{other}` is not grbal or rebal").into()),
    };
    let seeds: Vec<u64> = value("--seeds", "0,1,2")
        .split(',')
        .map(|s| s.trim().parse())
        .collect::<std::result::Result<_, _>>()?;
    let out = std::path::PathBuf::from(value("--out", "docs/results"));
    std::fs::create_dir_all(&out)?;
    let m = config().past_steps;
    let mut per_seed = Vec::new();
    let mut csv = String::from("seed,step,error_before,error_after\n");
    for &seed in &seeds {
        let errors = errors_along_episode(method, seed)?;
        for (i, (b, a)) in errors.iter().enumerate() {
            csv.push_str(&format!("{seed},{},{b},{a}\n", i + m));
        }
        per_seed.push(errors);
    }
    let name = method.name();
    std::fs::write(out.join(format!("{name}_adaptation_error.csv")), csv)?;
    // Table: mean over steps per seed, in the two halves of the episode.
    println!("| part of the episode | before adaptation | after adaptation | after / before |");
    println!("|---|---|---|---|");
    let k = config().future_steps;
    let parts = [
        ("gain +1.8 (steps 16-84)", m, SWITCH_STEP - k),
        (
            "gain -1.8, after the switch (steps 116-184)",
            SWITCH_STEP + m,
            200 - k,
        ),
    ];
    for (label, from, to) in parts {
        let seed_means = |pick: fn(&(f64, f64)) -> f64| -> Vec<f64> {
            per_seed
                .iter()
                .map(|e| {
                    let part = &e[from - m..=to - m];
                    part.iter().map(pick).sum::<f64>() / part.len() as f64
                })
                .collect()
        };
        let (b, a) = (seed_means(|e| e.0), seed_means(|e| e.1));
        let ratios: Vec<f64> = a.iter().zip(&b).map(|(x, y)| x / y).collect();
        let ((bm, bs), (am, as_), (rm, rs)) = (
            mean_and_sample_std(&b),
            mean_and_sample_std(&a),
            mean_and_sample_std(&ratios),
        );
        println!("| {label} | {bm:.4} +- {bs:.4} | {am:.4} +- {as_:.4} | {rm:.3} +- {rs:.3} |");
    }
    let caption = format!(
        "{} model error along a trajectory, pendulum motor gain +1.8 -> -1.8",
        match method {
            Method::Rebal => "ReBAL",
            _ => "GrBAL",
        }
    );
    let png = out.join(format!("{name}_adaptation_error.png"));
    plot(&png, &caption, &per_seed, m)?;
    Ok(())
}

fn plot(
    path: &std::path::Path,
    caption: &str,
    per_seed: &[Vec<(f64, f64)>],
    m: usize,
) -> Result<()> {
    mbrl_core::plot::register_font()?;
    let steps = per_seed.first().map_or(0, Vec::len);
    let series = |pick: fn(&(f64, f64)) -> f64| -> Vec<(f64, f64, f64)> {
        (0..steps)
            .map(|i| {
                let values: Vec<f64> = per_seed.iter().map(|e| pick(&e[i])).collect();
                let (mean, std) = mean_and_sample_std(&values);
                ((i + m) as f64, mean, std)
            })
            .collect()
    };
    let curves = [
        ("before adaptation", series(|e| e.0), RED),
        ("after adaptation", series(|e| e.1), BLUE),
    ];
    let all: Vec<f64> = curves
        .iter()
        .flat_map(|(_, s, _)| s.iter().map(|p| p.1))
        .filter(|v| *v > 0.0)
        .collect();
    let low = all.iter().cloned().fold(f64::INFINITY, f64::min) * 0.5;
    let high = all.iter().cloned().fold(0.0, f64::max) * 2.0;
    let root = BitMapBackend::new(path, (800, 500)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(caption, ("sans-serif", 18))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..200.0, (low..high).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("step t of the episode (switch at 100)")
        .y_desc("K-step error (normalised MSE)")
        .y_label_formatter(&|v| format!("{v:.3}"))
        .label_style(("sans-serif", 13))
        .draw()?;
    for (label, points, color) in curves {
        chart.draw_series(points.iter().map(|&(t, mean, std)| {
            PathElement::new(
                vec![(t, (mean - std).max(low)), (t, mean + std)],
                color.mix(0.15),
            )
        }))?;
        chart
            .draw_series(LineSeries::new(
                points.iter().map(|p| (p.0, p.1.max(low))),
                color.stroke_width(2),
            ))?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
    }
    chart.draw_series(std::iter::once(PathElement::new(
        vec![(SWITCH_STEP as f64, low), (SWITCH_STEP as f64, high)],
        BLACK.mix(0.5),
    )))?;
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .draw()?;
    root.present()?;
    Ok(())
}
